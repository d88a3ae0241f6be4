"""PyAirbyte offline and in a scratch directory: the AIRBYTE_* variables it reads when it is
imported. Import this module before `airbyte`."""

import os
import tempfile

WORK = tempfile.mkdtemp(prefix="pyairbyte-")
os.environ.update({
    "AIRBYTE_OFFLINE_MODE": "1",
    "DO_NOT_TRACK": "1",
    "AIRBYTE_PROJECT_DIR": WORK,
    "AIRBYTE_CACHE_ROOT": os.path.join(WORK, "cache"),
    "AIRBYTE_LOGGING_ROOT": os.path.join(WORK, "logs"),
    "AIRBYTE_TEMP_DIR": os.path.join(WORK, "tmp"),
})
for variable in ("AIRBYTE_CACHE_ROOT", "AIRBYTE_LOGGING_ROOT", "AIRBYTE_TEMP_DIR"):
    os.makedirs(os.environ[variable], exist_ok=True)
