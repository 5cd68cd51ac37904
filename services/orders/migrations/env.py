from servicekit.migrations import run_env
from services.orders.adapters.orm import metadata

run_env(metadata)
