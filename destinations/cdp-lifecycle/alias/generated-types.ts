// Generated file. DO NOT MODIFY IT BY HAND.

export interface Payload {
  /**
   * The unique ID of the call; it becomes the `id` column that the models deduplicate on. A UUID is generated when the call has none.
   */
  messageId?: string;
  /**
   * The previous ID of the user (usually the anonymous ID) that is merged into the user ID.
   */
  previousId: string;
  /**
   * The ID of the user in your systems.
   */
  userId: string;
  /**
   * The context of the call (library, device, page, campaign, ip…), stored as JSON.
   */
  context?: {
    [k: string]: unknown;
  };
  /**
   * When the call happened. When empty it is derived as receivedAt - (sentAt - originalTimestamp), else receivedAt.
   */
  timestamp?: string;
  /**
   * The device clock when the call happened.
   */
  originalTimestamp?: string;
  /**
   * The device clock when the call was sent.
   */
  sentAt?: string;
  /**
   * When the call was received (set by the collector).
   */
  receivedAt?: string;
  /**
   * Land events in batches, one warehouse transaction per batch.
   */
  enable_batching?: boolean;
  /**
   * Maximum number of events to include in each batch. Actual batch sizes may be lower.
   */
  batch_size?: number;
}
