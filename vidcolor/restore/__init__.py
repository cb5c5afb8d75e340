"""Film restoration: the motion-compensated window (``motion``) and the per-frame filters
(``filters``) behind the ``restore``, ``deflicker``, ``degrain`` and ``dust`` stages
(``vidcolor/stages/restore.py``)."""
