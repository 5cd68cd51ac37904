from servicekit.runtime import main
from services.orders.service import SPEC

main(SPEC)
