"""Guided colorization: colour the user gives (keyframes painted in an image editor, sparse hints),
carried through each shot by optical flow, with the automatic colorizer where no guide reaches.

- :mod:`vidcolor.guides.keyframes`: keyframe files (names, TOML map) and ``vidcolor keyframes``;
- :mod:`vidcolor.guides.hints`: colour points and scribbles, spread along luminance edges;
- :mod:`vidcolor.guides.shots`: shot boundaries and small luma of a film, for the planning pass;
- :mod:`vidcolor.guides.propagate`: carrying guide chroma forward and backward through a shot.
"""
