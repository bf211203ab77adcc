// Kinesis Video Streams through the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis-video and
// @aws-sdk/client-kinesis-video-archived-media): its rest-json serializer, its error classes
// (from `x-amzn-ErrorType`), and the archived-media client pointed at GetDataEndpoint's answer
// — a second KVS client beside boto3.
//
// Usage: node kvs_clients.mjs <endpoint> <stream with media> <expected frames>. Exits non-zero
// with a message on the first mismatch.

import { spawnSync } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KinesisVideoClient,
  CreateStreamCommand,
  DescribeStreamCommand,
  ListStreamsCommand,
  UpdateStreamCommand,
  DeleteStreamCommand,
  GetDataEndpointCommand,
  TagResourceCommand,
  ListTagsForResourceCommand,
  ResourceNotFoundException,
  ResourceInUseException,
  VersionMismatchException,
} from "@aws-sdk/client-kinesis-video";
import {
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  GetClipCommand,
  GetHLSStreamingSessionURLCommand,
  GetImagesCommand,
} from "@aws-sdk/client-kinesis-video-archived-media";

const [endpoint, stream, frames] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const conf = {
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1,
};
const kv = new KinesisVideoClient({ ...conf, endpoint });

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
}

async function refused(cmd, cls) {
  try {
    await kv.send(cmd);
  } catch (e) {
    check(e instanceof cls, `${cls.name}, got ${e.name}: ${e.message}`);
    return e;
  }
  check(false, `${cmd.constructor.name} succeeded`);
}

// --- control plane ---------------------------------------------------------------------------
const { StreamARN: arn } = await kv.send(new CreateStreamCommand({ StreamName: "js-cam", DataRetentionInHours: 24, MediaType: "video/h264" }));
check(/^arn:aws:kinesisvideo:us-east-1:000000000000:stream\/js-cam\/\d+$/.test(arn), `ARN ${arn}`);
const info = (await kv.send(new DescribeStreamCommand({ StreamARN: arn }))).StreamInfo;
check(info.StreamName === "js-cam" && info.Version === "1" && info.CreationTime instanceof Date, `info ${JSON.stringify(info)}`);
const e = await refused(new DescribeStreamCommand({ StreamName: "nope" }), ResourceNotFoundException);
check(e.$metadata.httpStatusCode === 404, "404 for an unknown stream");
await refused(new CreateStreamCommand({ StreamName: "js-cam" }), ResourceInUseException);
await kv.send(new UpdateStreamCommand({ StreamName: "js-cam", CurrentVersion: "1", DeviceName: "dev" }));
await refused(new UpdateStreamCommand({ StreamName: "js-cam", CurrentVersion: "1", DeviceName: "x" }), VersionMismatchException);
await kv.send(new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: "site", Value: "north" }] }));
check((await kv.send(new ListTagsForResourceCommand({ ResourceARN: arn }))).Tags.site === "north", "tags");
const names = (await kv.send(new ListStreamsCommand({}))).StreamInfoList.map((s) => s.StreamName);
check(names.includes("js-cam") && names.includes(stream), `list ${names}`);
const version = (await kv.send(new DescribeStreamCommand({ StreamName: "js-cam" }))).StreamInfo.Version;
await kv.send(new DeleteStreamCommand({ StreamARN: arn, CurrentVersion: version }));
await refused(new DescribeStreamCommand({ StreamName: "js-cam" }), ResourceNotFoundException);

// --- archived media at the data endpoint ------------------------------------------------------
const { DataEndpoint } = await kv.send(new GetDataEndpointCommand({ StreamName: stream, APIName: "GET_CLIP" }));
check(DataEndpoint === endpoint, `data endpoint ${DataEndpoint}`);
const am = new KinesisVideoArchivedMediaClient({ ...conf, endpoint: DataEndpoint });
const range = { StartTimestamp: new Date("2026-03-01T11:00:00Z"), EndTimestamp: new Date("2026-03-01T11:10:00Z") };
const fragments = (await am.send(new ListFragmentsCommand({
  StreamName: stream,
  FragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range },
}))).Fragments;
check(fragments.length >= 3 && fragments.every((f) => f.ProducerTimestamp instanceof Date && f.FragmentSizeInBytes > 0), `fragments ${fragments.length}`);
const clip = await am.send(new GetClipCommand({
  StreamName: stream,
  ClipFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range },
}));
check(clip.ContentType === "video/mp4", `clip type ${clip.ContentType}`);
const file = join(mkdtempSync(join(tmpdir(), "kvs-")), "clip.mp4");
writeFileSync(file, await clip.Payload.transformToByteArray());
const probe = spawnSync("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0",
  "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file], { encoding: "utf8", timeout: 60000 });
check(probe.status === 0 && probe.stderr.trim() === "", `ffprobe: ${probe.stderr}`);
check(Number(probe.stdout.trim()) === frames, `clip frames ${probe.stdout.trim()} = ${frames}`);
const { HLSStreamingSessionURL: url } = await am.send(new GetHLSStreamingSessionURLCommand({
  StreamName: stream, PlaybackMode: "ON_DEMAND",
  HLSFragmentSelector: { FragmentSelectorType: "PRODUCER_TIMESTAMP", TimestampRange: range },
}));
const master = await (await fetch(url)).text();
check(master.includes("#EXT-X-STREAM-INF"), `master playlist ${master.slice(0, 200)}`);
const images = (await am.send(new GetImagesCommand({
  StreamName: stream, ImageSelectorType: "PRODUCER_TIMESTAMP", Format: "JPEG",
  StartTimestamp: new Date("2026-03-01T11:00:00.500Z"), EndTimestamp: new Date("2026-03-01T11:00:02.500Z"),
  SamplingInterval: 500, WidthPixels: 320, FormatConfig: { JPEGQuality: "70" },
}))).Images;
check(images.length === 4 && images.every((i) => i.ImageContent && !i.Error), `images ${JSON.stringify(images.map((i) => i.Error))}`);
const jpeg = Buffer.from(images[0].ImageContent, "base64");
check(jpeg[0] === 0xff && jpeg[1] === 0xd8, "a JPEG");
check(images[1].TimeStamp.getTime() === new Date("2026-03-01T11:00:01Z").getTime(), "instants every 500 ms");
console.log("ok");
process.exit(0);
