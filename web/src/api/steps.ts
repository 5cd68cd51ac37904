/** An order's steps through the client layer: the body typed by the schema, the If-Match the
 * middleware adds from the version last read, and one Idempotency-Key per attempt kept until
 * an answer comes (a retry after a lost connection replays, never acts twice). */
import type { StepName } from "../lib/steps";
import { api, ApiProblem, newIdempotencyKey, type Order, unwrap } from "./client";
import type { components } from "./schema";

type Schemas = components["schemas"];

export interface StepBodies {
  diagnosis: Schemas["DiagnosisIn"];
  quote: Schemas["QuoteIn"];
  approval: Schemas["ApprovalIn"];
  "manager-approval": Schemas["ManagerApprovalIn"];
  parts: Schemas["PartsIn"];
  "repair/start": Schemas["NoBody"];
  "repair/finish": Schemas["RepairFinishIn"];
  qc: Schemas["QcIn"];
  pickup: Schemas["PickupIn"];
}

type StepPath = `/api/v1/repair-orders/{order_id}/${StepName}`;

/** One attempt of a step: the same key for its retries until the gateway answers. */
export class StepAttempt {
  private key = newIdempotencyKey();

  async send<S extends StepName>(orderId: string, step: S, body: StepBodies[S]): Promise<Order> {
    const path = `/api/v1/repair-orders/{order_id}/${step}` as StepPath;
    // The generated types know each step's own path; this one function serves them all.
    const post = api.POST as unknown as (p: StepPath, init: object) => ReturnType<typeof api.GET>;
    // A lost connection throws here and keeps the key: the step may or may not have happened,
    // and a retry with the same key finds out safely.
    const reply = await post(path, {
      params: { path: { order_id: orderId }, header: { "Idempotency-Key": this.key } },
      body,
    });
    // An answer came, whatever it says: the next attempt is a new request.
    this.key = newIdempotencyKey();
    return unwrap(reply as { data?: Order; error?: unknown; response: Response });
  }
}

export function isStale(error: unknown): boolean {
  return error instanceof ApiProblem && error.status === 412;
}
