"""Run elastic_des: ``python run.py [overrides]`` (see README)."""

import sys

from elastic_des.usage import usage, wants_help

if __name__ == "__main__":
    if wants_help(sys.argv[1:]):
        # Answered before the application (Hydra, pandas) is imported.
        print(usage())
        sys.exit(0)
    from elastic_des.app import main

    main()
