"""The exercise skeletons ``python -m scratchcnn.exercises start DIR`` copies into ``DIR``.

They are ordinary modules of the package (so an installed scratchcnn ships them), but nothing
imports them: ``start`` reads their text. ``README.md`` next to them is package data.
"""
