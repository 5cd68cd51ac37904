/** A write from a screen: one Idempotency-Key per attempt, kept until the gateway answers (a
 * retry after a lost connection replays, never acts twice); the API's field errors put beside
 * the form's fields; the lists it changes read again. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { App, type FormInstance } from "antd";
import { useRef } from "react";
import { ApiProblem, newIdempotencyKey } from "../api/client";
import { useI18n } from "../i18n";

export function fieldName(field: string): (string | number)[] {
  return field.split(".").map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

export function useAction<In, Out>(
  send: (body: In, idempotencyKey: string) => Promise<Out>,
  options: { form?: FormInstance; refresh?: unknown[][]; onDone?: (result: Out) => void } = {},
) {
  const { t } = useI18n();
  const { message } = App.useApp();
  const queries = useQueryClient();
  const key = useRef(newIdempotencyKey());
  return useMutation({
    mutationFn: async (body: In) => {
      const result = await send(body, key.current);
      key.current = newIdempotencyKey();
      return result;
    },
    onSuccess: (result) => {
      for (const queryKey of options.refresh ?? []) void queries.invalidateQueries({ queryKey });
      message.success(t("detail.done"));
      options.onDone?.(result);
    },
    onError: (error) => {
      if (error instanceof ApiProblem) {
        // A refusal is an answer: the next attempt is a new request.
        key.current = newIdempotencyKey();
        if (error.errors.length && options.form) {
          options.form.setFields(error.errors.map((e) => ({ name: fieldName(e.field.replace(/^body\./, "")), errors: [e.reason] })));
        }
      }
      message.error(error.message);
    },
  });
}
