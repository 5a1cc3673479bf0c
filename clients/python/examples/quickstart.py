from nightshift_client import Nightshift
from nightshift_client.models import CashflowProjectPayload

ns = Nightshift()  # NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN from the environment

# A password-reset e-mail: the idempotency key makes a retried call send it once.
mail = ns.send_email(
    "password_reset",
    "ada@example.com",
    {"name": "Ada", "reset_url": "https://app.example.com/reset/abc123", "expires_minutes": 30},
)
print("e-mail", ns.wait_email(mail.idempotency_key, timeout=30).state)

# Project user 1's cashflow now, wait for it, then read the projection.
job = ns.enqueue("cashflow.project", CashflowProjectPayload(user_id=1))
print("projection job", ns.wait(job, timeout=30).state)
projection = ns.cashflow(1)
print("lowest balance", projection.lowest_balance, projection.currency, "(minor units) on", projection.lowest_date)
