from servicekit.runtime import main
from services.customers.service import SPEC

main(SPEC)
