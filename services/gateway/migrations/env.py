from servicekit.migrations import run_env
from services.gateway.orm import metadata

run_env(metadata)
