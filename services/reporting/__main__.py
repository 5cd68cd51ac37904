from servicekit.runtime import main
from services.reporting.service import SPEC

# Guarded: seed-history's worker processes import this module again (multiprocessing spawn).
if __name__ == "__main__":
    main(SPEC)
