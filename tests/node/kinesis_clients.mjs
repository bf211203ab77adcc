// Kinesis through the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis): its own JSON 1.1
// serializer and parser, its waiters, its error classes, and SubscribeToShard over HTTP/2
// (NodeHttp2Handler) with its event-stream decoder: a third SDK beside Rust's and botocore.
//
// Usage: node kinesis_clients.mjs <endpoint>. Exits non-zero with a message on the first
// mismatch; every wait is bounded.

import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  PutRecordsCommand,
  PutRecordCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  UpdateStreamWarmThroughputCommand,
  DescribeAccountSettingsCommand,
  DeleteStreamCommand,
  ResourceNotFoundException,
  ValidationException,
  waitUntilStreamExists,
  waitUntilStreamNotExists,
} from "@aws-sdk/client-kinesis";

const endpoint = process.argv[2];
const kds = new KinesisClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1,
});

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
}

const within = (ms, what, p) =>
  Promise.race([
    p,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);

const bytes = (i) => new Uint8Array(Array.from({ length: 1 + (i % 300) }, (_, j) => (i * 7 + j) % 256));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// --- Control plane, with the SDK's waiters -------------------------------------------------
await kds.send(new CreateStreamCommand({ StreamName: "js", ShardCount: 2 }));
await within(20000, "waitUntilStreamExists", waitUntilStreamExists({ client: kds, maxWaitTime: 15 }, { StreamName: "js" }));
const summary = (await kds.send(new DescribeStreamSummaryCommand({ StreamName: "js" }))).StreamDescriptionSummary;
check(summary.StreamStatus === "ACTIVE" && summary.OpenShardCount === 2, `summary ${JSON.stringify(summary)}`);
check(summary.StreamCreationTimestamp instanceof Date, "StreamCreationTimestamp parses as a Date");
const shards = (await kds.send(new ListShardsCommand({ StreamName: "js" }))).Shards;
check(shards.length === 2 && shards[1].HashKeyRange.EndingHashKey === "340282366920938463463374607431768211455", "ListShards");

// --- Records: bytes round-trip -------------------------------------------------------------
const entries = Array.from({ length: 40 }, (_, i) => ({ PartitionKey: `k${i}`, Data: bytes(i) }));
const put = await kds.send(new PutRecordsCommand({ StreamName: "js", Records: entries }));
check(put.FailedRecordCount === 0 && put.Records.length === 40, "PutRecords");
const got = new Map();
for (const s of shards) {
  const it = (await kds.send(new GetShardIteratorCommand({ StreamName: "js", ShardId: s.ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
  const page = await kds.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
  check(page.NextShardIterator && page.MillisBehindLatest === 0, "GetRecords page");
  for (const r of page.Records) {
    check(r.ApproximateArrivalTimestamp instanceof Date, "ApproximateArrivalTimestamp parses");
    got.set(r.SequenceNumber, r);
  }
}
check(got.size === 40, `40 records read, got ${got.size}`);
put.Records.forEach((rec, i) => {
  const r = got.get(rec.SequenceNumber);
  check(r && r.PartitionKey === `k${i}` && same(r.Data, entries[i].Data), `record ${i} round-trips`);
});

// --- Errors as the SDK's exception classes -------------------------------------------------
try {
  await kds.send(new DescribeStreamSummaryCommand({ StreamName: "nope" }));
  check(false, "unknown stream answered");
} catch (e) {
  check(e instanceof ResourceNotFoundException, `ResourceNotFoundException, got ${e.name}`);
  check(e.message === "Stream nope under account 000000000000 not found.", e.message);
  check(e.$metadata.httpStatusCode === 400 && e.$metadata.requestId, "status and request id");
}
try {
  await kds.send(new PutRecordCommand({ StreamName: "js", PartitionKey: "", Data: new Uint8Array(1) }));
  check(false, "empty partition key accepted");
} catch (e) {
  check(e instanceof ValidationException || e.name === "ValidationException", `ValidationException, got ${e.name}`);
  check(e.message.startsWith("1 validation error detected: Value '' at 'partitionKey'"), e.message);
}

// --- SubscribeToShard over HTTP/2, records pushed as they are written -----------------------
const arn = summary.StreamARN;
const consumer = (await kds.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: "js-app" }))).Consumer;
for (let i = 0; i < 50; i++) {
  const c = (await kds.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumer.ConsumerARN }))).ConsumerDescription;
  if (c.ConsumerStatus === "ACTIVE") break;
  await new Promise((r) => setTimeout(r, 100));
}
const shard0 = shards[0].ShardId;
const sub = await within(10000, "SubscribeToShard", kds.send(new SubscribeToShardCommand({
  ConsumerARN: consumer.ConsumerARN,
  ShardId: shard0,
  StartingPosition: { Type: "LATEST" },
})));
// Keys that land on shard 0 (the lower half of the hash-key space).
const live = [];
const writer = (async () => {
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; live.length < 5; i++) {
    const r = await kds.send(new PutRecordCommand({ StreamName: "js", PartitionKey: `live${i}`, Data: bytes(i + 1000) }));
    if (r.ShardId === shard0) live.push(r.SequenceNumber);
  }
})();
const pushed = [];
let continuation = null;
await within(20000, "pushed records", (async () => {
  for await (const event of sub.EventStream) {
    check(!event.ResourceInUseException && !event.InternalFailureException, `stream error ${JSON.stringify(event)}`);
    const e = event.SubscribeToShardEvent;
    if (!e) continue;
    check(typeof e.MillisBehindLatest === "number" && e.ContinuationSequenceNumber, "event members");
    continuation = e.ContinuationSequenceNumber;
    for (const r of e.Records) pushed.push(r.SequenceNumber);
    if (pushed.length >= 5) break;
  }
})());
await writer;
check(pushed.slice(0, 5).join() === live.join(), `pushed ${pushed} = written ${live}`);
check(continuation === live[4], "ContinuationSequenceNumber is the last record's");

// --- Newer operations ----------------------------------------------------------------------
const settings = await kds.send(new DescribeAccountSettingsCommand({}));
check(settings.MinimumThroughputBillingCommitment.Status === "DISABLED", "account settings");
try {
  await kds.send(new UpdateStreamWarmThroughputCommand({ StreamName: "js", WarmThroughputMiBps: 4 }));
  check(false, "warm throughput on a provisioned stream");
} catch (e) {
  check(e.name === "InvalidArgumentException", `InvalidArgumentException, got ${e.name}`);
}

await kds.send(new DeleteStreamCommand({ StreamName: "js", EnforceConsumerDeletion: true }));
await within(20000, "waitUntilStreamNotExists", waitUntilStreamNotExists({ client: kds, maxWaitTime: 15 }, { StreamName: "js" }));
kds.destroy();
console.log("ok");
process.exit(0);
