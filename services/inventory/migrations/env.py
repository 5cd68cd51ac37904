from servicekit.migrations import run_env
from services.inventory.adapters.orm import metadata

run_env(metadata)
