"""``python -m scratchcnn.train``: see ``scratchcnn.train``."""
import sys

from .command import main

sys.exit(main())
