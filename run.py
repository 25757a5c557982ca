"""Run elastic_des: ``python run.py [overrides]`` (see README)."""

from elastic_des.app import main

if __name__ == "__main__":
    main()
