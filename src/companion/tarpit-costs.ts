// The tarpit's price list (spec/config-control-metrics.md §5.3): what each thing a client does
// costs its source's token bucket. Shared by the instance (which charges) and the companion
// (which keeps the buckets); kept apart so the per-connection start path imports only this.
/** What each event costs (spec §5.3). */
export const TARPIT_COST = {
  accept: 1,
  none: 0.1,
  publickey: 0.2,
  password: 1,
  translationFailure: 2,
  unsupportedMethod: 5,
  rejectedByTranslation: 8,
  invalidUserName: 10,
  emptyPassword: 10,
  hostbasedUnknownKey: 10,
} as const;
