from servicekit.runtime import main
from services.inventory.service import SPEC

main(SPEC)
