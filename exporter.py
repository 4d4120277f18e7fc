#!/usr/bin/env python3
"""scribe-exporter: Scribe signature click analytics as Prometheus metrics.

Run `python exporter.py --help`, or `make demo` to try it against the built-in simulator.
"""

import sys

from scribe_exporter.cli import main

if __name__ == "__main__":
    sys.exit(main())
