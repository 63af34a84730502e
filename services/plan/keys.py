"""Where the plan signing key pair is found: the environment variables and file names.

Kept apart from signing.py (which needs `cryptography`) so that the stack table and the CLI can
name the keys without importing any cryptography.
"""

PRIVATE_KEY_ENV = "DNSCTL_PLAN_SIGNING_KEY"
PRIVATE_KEY_FILE_ENV = "DNSCTL_PLAN_SIGNING_KEY_FILE"
PRIVATE_KEY_SECRET_ENV = "DNSCTL_PLAN_SIGNING_KEY_SECRET"
PUBLIC_KEY_ENV = "DNSCTL_PLAN_PUBLIC_KEY"
PUBLIC_KEY_FILE_ENV = "DNSCTL_PLAN_PUBLIC_KEY_FILE"
PRIVATE_KEY_FILE = "plan-signing.key"
PUBLIC_KEY_FILE = "plan-signing.pub"
