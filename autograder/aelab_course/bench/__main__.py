"""python -m aelab_course.bench: see cli.py."""

import sys

from .cli import main

sys.exit(main())
