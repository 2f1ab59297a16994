"""``python -m scratchcnn.serve``; see ``scratchcnn/serve/__init__.py``."""
from .command import main

if __name__ == "__main__":
    main()
