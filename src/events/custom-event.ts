import { z } from 'zod';

/**
 * An event another system sent to `POST /v1/events`: feedback, a business outcome, a label. Its
 * type is declared in sluice.yaml (`events.types`); `fields` are the type's fields once validated,
 * mapped, derived and redacted. `requestId` joins it to the wide event of a request.
 */
export const customEventSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string().describe('The sender’s id, or one Sluice generated; stored once per id.'),
  type: z.string(),
  time: z.string().describe('ISO time the event happened (the sender’s `time`, else when it arrived).'),
  receivedAt: z.string().describe('ISO time Sluice accepted it.'),
  requestId: z.string().nullable().describe('The request it is about (x-sluice-request-id).'),
  keyName: z.string().nullable().describe('The API key that sent it; null for the admin key or an open API.'),
  admin: z.boolean().describe('Sent with the admin key.'),
  fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
});

export type CustomEvent = z.infer<typeof customEventSchema>;
