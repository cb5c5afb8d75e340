"""``python -m vidcolor.training RECIPE --data ... --out ...``: the ``vidcolor train`` command, for
``torchrun --nproc_per_node N -m vidcolor.training ...`` (torchrun starts a module or a script)."""

from vidcolor.cli.train import train

if __name__ == "__main__":
    train(prog_name="python -m vidcolor.training")
