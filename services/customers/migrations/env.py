from servicekit.migrations import run_env
from services.customers.adapters.orm import metadata

run_env(metadata)
