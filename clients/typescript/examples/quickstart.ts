import { Nightshift } from "@nightshift/client";

const ns = new Nightshift(); // NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN from the environment

// A password-reset e-mail: the idempotency key makes a retried call send it once.
const mail = await ns.sendEmail("password_reset", "ada@example.com", {
  name: "Ada",
  reset_url: "https://app.example.com/reset/abc123",
  expires_minutes: 30,
});
console.log("e-mail", (await ns.waitEmail(mail.idempotency_key, { timeoutMs: 30_000 })).state);

// Project user 1's cashflow now, wait for it, then read the projection.
const job = await ns.enqueue("cashflow.project", { user_id: 1 });
console.log("projection job", (await ns.wait(job, { timeoutMs: 30_000 })).state);
const projection = await ns.cashflow(1);
console.log("lowest balance", projection.lowest_balance, projection.currency, "(minor units) on", projection.lowest_date);
