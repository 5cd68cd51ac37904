from servicekit.runtime import main
from services.reporting.service import SPEC

main(SPEC)
