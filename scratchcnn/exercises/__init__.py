"""Write the tutorial network's layers yourself, have them checked, then train MNIST with them.

    python -m scratchcnn.exercises start DIR               # skeletons: conv3x3.py, maxpool2.py, softmax.py
    python -m scratchcnn.exercises check DIR [LAYER ...]   # a line per check; hints name known mistakes
    python -m scratchcnn.train --layers DIR                # the tutorial network, built from them
    python -m scratchcnn.serve --layers DIR [--model run.npz]

Modules: ``command`` (the command line), ``report`` (checking a folder, the report's text),
``checks`` (the checks every layer goes through), ``cases`` (what is particular to each layer),
``hints`` (the known mistakes and their signatures), ``loading`` (running the learner's files),
``learner`` (training and serving with the learner's layers), ``templates`` (the skeletons).
"""
from .report import check_folder, report_lines

__all__ = ["check_folder", "report_lines"]
