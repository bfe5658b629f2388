"""python -m aelab_course.gpucheck: see cli.py."""

import sys

from .cli import main

sys.exit(main())
