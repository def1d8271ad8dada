"use strict";
/*
 * Compatibility scenario: the vendor's Node.js SDK for Milvus 1.x (@zilliz/milvus-sdk-node 1.0.0)
 * against a server that speaks the Milvus 1.1 gRPC protocol.
 *
 *     node scenario.js HOST:PORT [--no-auto-flush]
 *
 * It uses only the SDK's public API (the MilvusNode class), the way an application would, and
 * checks every answer itself: exact counts, partition lists, stored vectors read back bit for bit,
 * search results against an exact brute-force oracle, and the error_code of in-band errors.
 * Every check is recorded; a failed check does not stop the run (a step that throws is recorded as
 * one failed check and the next step runs). The last line printed is a JSON summary:
 *
 *     {"sdk": "...", "passed": N, "failed": M, "failures": [{"check": ..., "detail": ...}, ...]}
 *
 * Exit status: 0 every check passed, 1 a check failed, 2 the scenario itself crashed or ran out of
 * time, 3 the SDK is not installed (run scripts/bootstrap.sh).
 *
 * --no-auto-flush: the server flushes only on request, so rows inserted but not flushed must not be
 * counted yet (checked only with this flag).
 *
 * The scenario creates its own collections under a unique prefix and drops them at the end.
 */

const SDK_PACKAGE = "@zilliz/milvus-sdk-node";

let MilvusNode;
let sdkVersion = "?";
try {
  ({ MilvusNode } = require(SDK_PACKAGE));
  sdkVersion = require(`${SDK_PACKAGE}/package.json`).version;
} catch (err) {
  console.error(`node SDK scenario: cannot load ${SDK_PACKAGE} (${err.message}); run scripts/bootstrap.sh`);
  process.exit(3);
}

const DIM = 16;
const BIN_DIM = 64; // bits; 8 bytes per vector
const TOP_K = 10;
const IVF_ROWS = 5000; // one segment above the 4,096 rows from which Milvus builds an index
const NLIST = 16;
const SCENARIO_TIMEOUT_MS = 120000;

// -- arguments --------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const address = args.find((a) => !a.startsWith("--"));
const noAutoFlush = args.includes("--no-auto-flush");
if (!address || !/^[^:]+:\d+$/.test(address)) {
  console.error("usage: node scenario.js HOST:PORT [--no-auto-flush]");
  process.exit(2);
}

// -- check bookkeeping --------------------------------------------------------------------------------

const passed = [];
const failures = [];
let currentStep = "";

function check(name, ok, detail) {
  const label = currentStep ? `${currentStep}: ${name}` : name;
  if (ok) {
    passed.push(label);
  } else {
    const text = typeof detail === "function" ? detail() : detail;
    failures.push({ check: label, detail: text === undefined ? "" : String(text) });
    console.log(`FAIL ${label}${text === undefined ? "" : ` -- ${text}`}`);
  }
  return Boolean(ok);
}

function show(value) {
  const text = JSON.stringify(value, (_k, v) => (Buffer.isBuffer(v) ? [...v] : v));
  return text && text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

/** A reply whose status is SUCCESS (a Status itself, or a reply carrying one in .status). */
function ok(name, reply) {
  const status = reply && "error_code" in reply ? reply : reply && reply.status;
  return check(name, status && status.error_code === "SUCCESS", () => `reply ${show(reply)}`);
}

/** A reply whose status carries the given error code name. */
function code(name, reply, expected) {
  const status = reply && "error_code" in reply ? reply : reply && reply.status;
  return check(name, status && status.error_code === expected,
    () => `expected ${expected}, reply ${show(reply)}`);
}

function equal(name, actual, expected) {
  const a = show(actual);
  const e = show(expected);
  return check(name, a === e, () => `expected ${e}, got ${a}`);
}

async function step(name, body) {
  currentStep = name;
  try {
    await body();
  } catch (err) {
    check("completes without an exception", false, err && err.stack ? err.stack.split("\n").slice(0, 4).join(" | ") : err);
  } finally {
    currentStep = "";
  }
}

// -- data and exact oracles -----------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rows of float32 values (each exactly representable, as the wire carries them). */
function floatRows(n, dim, seed) {
  const next = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.fround(next() * 2 - 1)));
}

function binaryRows(n, bytes, seed) {
  const next = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: bytes }, () => Math.floor(next() * 256)));
}

function l2(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

function hamming(a, b) {
  let bits = 0;
  for (let i = 0; i < a.length; i++) {
    let x = (a[i] ^ b[i]) & 0xff;
    while (x) {
      bits += x & 1;
      x >>= 1;
    }
  }
  return bits;
}

/** The exact top k of one query over {id: vector} entries, ascending distance, ties by id. */
function oracle(entries, query, k, metric) {
  return entries
    .map(([id, vec]) => ({ id: String(id), distance: metric(query, vec) }))
    .sort((x, y) => x.distance - y.distance || Number(x.id) - Number(y.id))
    .slice(0, k);
}

function close(a, b) {
  return Math.abs(a - b) <= 1e-4 + 1e-4 * Math.abs(b);
}

/**
 * Check a search reply against the exact answers (one list per query). Float results must list
 * the same ids in the same order (random data: no ties); binary results (Hamming ties are common)
 * must give the same distances in order, each id at its true distance, and the query's own id first.
 */
function checkSearch(name, reply, expected, options = {}) {
  if (!ok(`${name} succeeds`, reply)) return;
  const nq = expected.length;
  const k = expected[0].length;
  equal(`${name}: row_num is nq`, reply.row_num, String(nq));
  equal(`${name}: ${nq * k} ids and distances`, [reply.ids.length, reply.distances.length], [nq * k, nq * k]);
  check(`${name}: data has one row of ${k} per query`,
    Array.isArray(reply.data) && reply.data.length === nq && reply.data.every((row) => row.length === k),
    () => `data ${show(reply.data)}`);
  const truth = options.truth || new Map();
  for (let q = 0; q < nq; q++) {
    const got = reply.ids.slice(q * k, (q + 1) * k);
    const dist = reply.distances.slice(q * k, (q + 1) * k);
    const want = expected[q];
    if (options.ties) {
      check(`${name}: query ${q} distances are the exact top ${k}`,
        dist.length === k && dist.every((d, i) => close(d, want[i].distance)),
        () => `got ${show(dist)}, expected ${show(want.map((w) => w.distance))}`);
      check(`${name}: query ${q} ids are at their true distances`,
        got.every((id, i) => truth.has(id) && close(truth.get(id)(q), dist[i])),
        () => `ids ${show(got)} distances ${show(dist)}`);
    } else {
      equal(`${name}: query ${q} ids are the exact top ${k}`, got, want.map((w) => w.id));
      check(`${name}: query ${q} distances match`,
        dist.length === k && dist.every((d, i) => close(d, want[i].distance)),
        () => `got ${show(dist)}, expected ${show(want.map((w) => w.distance))}`);
    }
    if (options.selfIds) {
      equal(`${name}: query ${q} finds its own id first`, got[0], String(options.selfIds[q]));
      check(`${name}: query ${q} own distance is 0`, Math.abs(dist[0]) <= 1e-4, () => `distance ${dist[0]}`);
    }
    if (reply.data && reply.data[q]) {
      equal(`${name}: data row ${q} pairs ids with distances`, reply.data[q],
        got.map((id, i) => ({ id, distance: dist[i] })));
    }
  }
}

// -- the scenario -------------------------------------------------------------------------------------

// Every public call of the SDK, to note the reason text of each successful reply.
const SDK_CALLS = [
  "createCollection", "hasCollection", "describeCollection", "countCollection", "showCollections",
  "showCollectionsInfo", "preloadCollection", "dropCollection", "createIndex", "describeIndex", "dropIndex",
  "createPartition", "hasPartition", "showPartitions", "dropPartition", "insert", "getVectorsByID", "search",
  "deleteByIds", "flush", "compact",
];
const successReasons = new Map(); // call -> Set of reason texts seen with SUCCESS

function noteReasons(client) {
  for (const call of SDK_CALLS) {
    const original = client[call].bind(client);
    client[call] = async (...callArgs) => {
      const reply = await original(...callArgs);
      const status = reply && "error_code" in reply ? reply : reply && reply.status;
      if (status && status.error_code === "SUCCESS") {
        const label = call === "search" && callArgs[0] && callArgs[0].id_array ? "search (by id)" : call;
        if (!successReasons.has(label)) successReasons.set(label, new Set());
        successReasons.get(label).add(status.reason);
      }
      return reply;
    };
  }
}

async function main() {
  const client = new MilvusNode(address);
  noteReasons(client);
  const metric = client.getMetricType();
  const indexType = client.getIndexType();
  const prefix = `nodesdk_${process.pid}_${Date.now().toString(36)}`;
  const flt = `${prefix}_l2`;
  const ivf = `${prefix}_ivf`;
  const bin = `${prefix}_bin`;
  const missing = `${prefix}_missing`;

  const defaultRows = floatRows(200, DIM, 1);
  const p1Rows = floatRows(100, DIM, 2);
  const defaultIds = defaultRows.map((_, i) => i + 1); // the SDK drops an id of 0, so ids start at 1
  const p1Ids = p1Rows.map((_, i) => 1001 + i);
  const vectorOf = new Map();
  defaultIds.forEach((id, i) => vectorOf.set(id, defaultRows[i]));
  p1Ids.forEach((id, i) => vectorOf.set(id, p1Rows[i]));
  const deleted = new Set();
  const live = (ids) => ids.filter((id) => !deleted.has(id)).map((id) => [id, vectorOf.get(id)]);
  const records = (ids) => ids.map((id) => ({ id, value: vectorOf.get(id) }));
  const query = (ids) => ids.map((id) => ({ float_data: vectorOf.get(id) }));

  await step("collections", async () => {
    ok("createCollection", await client.createCollection({
      collection_name: flt, dimension: DIM, index_file_size: 1024, metric_type: metric.L2,
    }));
    code("createCollection of an existing name", await client.createCollection({
      collection_name: flt, dimension: DIM, index_file_size: 1024, metric_type: metric.L2,
    }), "ILLEGAL_COLLECTION_NAME");
    const has = await client.hasCollection({ collection_name: flt });
    ok("hasCollection", has);
    equal("hasCollection is true", has.bool_reply, true);
    const hasMissing = await client.hasCollection({ collection_name: missing });
    ok("hasCollection(missing)", hasMissing);
    equal("hasCollection(missing) is false", hasMissing.bool_reply, false);
    const schema = await client.describeCollection({ collection_name: flt });
    ok("describeCollection", schema);
    equal("describeCollection fields",
      [schema.collection_name, schema.dimension, schema.index_file_size, schema.metric_type],
      [flt, String(DIM), "1024", metric.L2]);
    const list = await client.showCollections();
    ok("showCollections", list);
    check("showCollections lists the collection", (list.collection_names || []).includes(flt),
      () => show(list.collection_names));
    const count = await client.countCollection({ collection_name: flt });
    ok("countCollection of a new collection", count);
    equal("a new collection counts 0", count.collection_row_count, "0");
    const info = await client.showCollectionsInfo({ collection_name: flt });
    ok("showCollectionsInfo of a new collection", info);
    equal("showCollectionsInfo of a new collection", JSON.parse(info.json_info || "null"),
      { partitions: [{ row_count: 0, segments: null, tag: "_default" }], row_count: 0 });
  });

  await step("partitions", async () => {
    ok("createPartition p1", await client.createPartition({ collection_name: flt, tag: "p1" }));
    ok("createPartition p_tmp", await client.createPartition({ collection_name: flt, tag: "p_tmp" }));
    code("createPartition duplicate", await client.createPartition({ collection_name: flt, tag: "p1" }),
      "UNEXPECTED_ERROR");
    code("createPartition _default", await client.createPartition({ collection_name: flt, tag: "_default" }),
      "UNEXPECTED_ERROR");
    for (const [tag, expected] of [["p1", true], ["_default", true], ["nope", false]]) {
      const reply = await client.hasPartition({ collection_name: flt, tag });
      ok(`hasPartition(${tag})`, reply);
      equal(`hasPartition(${tag}) is ${expected}`, reply.bool_reply, expected);
    }
    const list = await client.showPartitions({ collection_name: flt });
    ok("showPartitions", list);
    equal("showPartitions lists _default first", list.partition_tag_array, ["_default", "p1", "p_tmp"]);
    ok("dropPartition p_tmp", await client.dropPartition({ collection_name: flt, tag: "p_tmp" }));
    const gone = await client.hasPartition({ collection_name: flt, tag: "p_tmp" });
    equal("hasPartition(p_tmp) after the drop", [gone.status && gone.status.error_code, gone.bool_reply],
      ["SUCCESS", false]);
    equal("showPartitions after the drop", (await client.showPartitions({ collection_name: flt })).partition_tag_array,
      ["_default", "p1"]);
    code("dropPartition _default", await client.dropPartition({ collection_name: flt, tag: "_default" }),
      "ILLEGAL_COLLECTION_NAME");
    code("dropPartition of an unknown tag", await client.dropPartition({ collection_name: flt, tag: "nope" }),
      "UNEXPECTED_ERROR");
  });

  await step("insert float vectors with ids", async () => {
    const a = await client.insert({ collection_name: flt, records: records(defaultIds), record_type: "float" });
    ok("insert into _default", a);
    equal("insert returns the given ids", a.vector_id_array, defaultIds.map(String));
    const b = await client.insert({
      collection_name: flt, partition_tag: "p1", records: records(p1Ids), record_type: "float",
    });
    ok("insert into p1", b);
    equal("insert into p1 returns the given ids", b.vector_id_array, p1Ids.map(String));
    if (noAutoFlush) {
      equal("rows not flushed yet are not counted",
        (await client.countCollection({ collection_name: flt })).collection_row_count, "0");
    }
    ok("flush", await client.flush({ collection_name_array: [flt] }));
    const count = await client.countCollection({ collection_name: flt });
    ok("countCollection", count);
    equal("count after flush", count.collection_row_count, "300");
    const info = await client.showCollectionsInfo({ collection_name: flt });
    ok("showCollectionsInfo", info);
    const stats = JSON.parse(info.json_info || "{}");
    equal("showCollectionsInfo totals", [stats.row_count, (stats.partitions || []).map((p) => [p.tag, p.row_count])],
      [300, [["_default", 200], ["p1", 100]]]);
    const segments = (stats.partitions || []).flatMap((p) => p.segments || []);
    check("showCollectionsInfo segments are FLAT files holding every row",
      segments.length >= 2 && segments.every((s) => s.index_name === "IDMAP" && typeof s.name === "string"
        && s.data_size > 0) && segments.reduce((n, s) => n + s.row_count, 0) === 300,
      () => show(stats));
    ok("preloadCollection", await client.preloadCollection({ collection_name: flt }));
  });

  await step("search FLAT", async () => {
    const ids = [5, 17, 150, 1010];
    const reply = await client.search({
      collection_name: flt, topk: TOP_K, extra_params: {}, query_record_array: query(ids),
    });
    const all = live([...defaultIds, ...p1Ids]);
    checkSearch("search", reply, ids.map((id) => oracle(all, vectorOf.get(id), TOP_K, l2)), { selfIds: ids });
  });

  await step("search limited to partitions", async () => {
    const ids = [5, 1010];
    const inP1 = await client.search({
      collection_name: flt, topk: TOP_K, partition_tag_array: ["p1"], extra_params: {}, query_record_array: query(ids),
    });
    checkSearch("search in p1", inP1, ids.map((id) => oracle(live(p1Ids), vectorOf.get(id), TOP_K, l2)));
    const inDefault = await client.search({
      collection_name: flt, topk: TOP_K, partition_tag_array: ["_default"], extra_params: {},
      query_record_array: query(ids),
    });
    checkSearch("search in _default", inDefault,
      ids.map((id) => oracle(live(defaultIds), vectorOf.get(id), TOP_K, l2)));
    code("search in an unknown partition", await client.search({
      collection_name: flt, topk: TOP_K, partition_tag_array: ["nope"], extra_params: {}, query_record_array: query([5]),
    }), "UNEXPECTED_ERROR");
  });

  await step("search by id", async () => {
    const reply = await client.search({ collection_name: flt, topk: TOP_K, extra_params: {}, id_array: [17, 1010] });
    const all = live([...defaultIds, ...p1Ids]);
    checkSearch("search by id", reply, [17, 1010].map((id) => oracle(all, vectorOf.get(id), TOP_K, l2)),
      { selfIds: [17, 1010] });
  });

  await step("get vectors by id", async () => {
    const reply = await client.getVectorsByID({ collection_name: flt, id_array: [5, 1010, 999999] });
    ok("getVectorsByID", reply);
    const rows = reply.vectors_data || [];
    equal("one record per id", rows.length, 3);
    equal("vector of id 5 read back exactly", rows[0] && rows[0].float_data, vectorOf.get(5));
    equal("vector of id 1010 (in p1) read back exactly", rows[1] && rows[1].float_data, vectorOf.get(1010));
    equal("an unknown id gives an empty record",
      rows[2] && [rows[2].float_data.length, rows[2].binary_data.length], [0, 0]);
  });

  await step("delete by id", async () => {
    ok("deleteByIds", await client.deleteByIds({ collection_name: flt, id_array: [5, 6, 1050, 424242] }));
    [5, 6, 1050].forEach((id) => deleted.add(id));
    ok("flush after the delete", await client.flush({ collection_name_array: [flt] }));
    equal("count after the delete", (await client.countCollection({ collection_name: flt })).collection_row_count,
      "297");
    const rows = (await client.getVectorsByID({ collection_name: flt, id_array: [5, 7] })).vectors_data || [];
    equal("a deleted id gives an empty record, a live one its vector",
      [rows[0] && rows[0].float_data.length, rows[1] && rows[1].float_data], [0, vectorOf.get(7)]);
    const reply = await client.search({
      collection_name: flt, topk: TOP_K, extra_params: {}, query_record_array: query([5, 1050]),
    });
    const all = live([...defaultIds, ...p1Ids]);
    checkSearch("search after the delete", reply, [5, 1050].map((id) => oracle(all, vectorOf.get(id), TOP_K, l2)));
  });

  await step("compact", async () => {
    ok("compact", await client.compact({ collection_name: flt }));
    equal("count after compact", (await client.countCollection({ collection_name: flt })).collection_row_count, "297");
    const stats = JSON.parse((await client.showCollectionsInfo({ collection_name: flt })).json_info || "{}");
    equal("showCollectionsInfo after compact", [stats.row_count, (stats.partitions || []).map((p) => p.row_count)],
      [297, [198, 99]]);
    const reply = await client.search({
      collection_name: flt, topk: TOP_K, extra_params: {}, query_record_array: query([7, 1010]),
    });
    const all = live([...defaultIds, ...p1Ids]);
    checkSearch("search after compact", reply, [7, 1010].map((id) => oracle(all, vectorOf.get(id), TOP_K, l2)),
      { selfIds: [7, 1010] });
  });

  await step("bad input on an existing collection", async () => {
    code("insert with the wrong dimension", await client.insert({
      collection_name: flt, records: [{ id: 5000, value: vectorOf.get(7).slice(1) }], record_type: "float",
    }), "ILLEGAL_DIMENSION");
    code("insert without ids into a collection with user ids", await client.insert({
      collection_name: flt, records: [{ value: vectorOf.get(7) }], record_type: "float",
    }), "ILLEGAL_VECTOR_ID");
    code("insert into an unknown partition", await client.insert({
      collection_name: flt, partition_tag: "nope", records: [{ id: 5001, value: vectorOf.get(7) }], record_type: "float",
    }), "UNEXPECTED_ERROR");
    code("search with the wrong dimension", await client.search({
      collection_name: flt, topk: TOP_K, extra_params: {}, query_record_array: [{ float_data: vectorOf.get(7).slice(2) }],
    }), "ILLEGAL_DIMENSION");
    code("search with topk 0", await client.search({
      collection_name: flt, topk: 0, extra_params: {}, query_record_array: query([7]),
    }), "ILLEGAL_TOPK");
    code("search with topk 1048577", await client.search({
      collection_name: flt, topk: 1048577, extra_params: {}, query_record_array: query([7]),
    }), "ILLEGAL_TOPK");
    code("createIndex IVF_FLAT with nlist 0", await client.createIndex({
      collection_name: flt, index_type: indexType.IVF_FLAT, extra_params: { nlist: 0 },
    }), "ILLEGAL_ARGUMENT");
    ok("flush after the refused writes", await client.flush({ collection_name_array: [flt] }));
    equal("refused writes wrote nothing", (await client.countCollection({ collection_name: flt })).collection_row_count,
      "297");
  });

  await step("missing collection", async () => {
    const name = { collection_name: missing };
    code("describeCollection", await client.describeCollection(name), "COLLECTION_NOT_EXISTS");
    code("countCollection", await client.countCollection(name), "COLLECTION_NOT_EXISTS");
    code("showCollectionsInfo", await client.showCollectionsInfo(name), "COLLECTION_NOT_EXISTS");
    code("showPartitions", await client.showPartitions(name), "COLLECTION_NOT_EXISTS");
    code("createPartition", await client.createPartition({ collection_name: missing, tag: "x" }),
      "COLLECTION_NOT_EXISTS");
    code("insert", await client.insert({
      collection_name: missing, records: [{ id: 1, value: vectorOf.get(7) }], record_type: "float",
    }), "COLLECTION_NOT_EXISTS");
    code("search", await client.search({
      collection_name: missing, topk: TOP_K, extra_params: {}, query_record_array: query([7]),
    }), "COLLECTION_NOT_EXISTS");
    code("getVectorsByID", await client.getVectorsByID({ collection_name: missing, id_array: [1] }),
      "COLLECTION_NOT_EXISTS");
    code("deleteByIds", await client.deleteByIds({ collection_name: missing, id_array: [1] }), "COLLECTION_NOT_EXISTS");
    code("createIndex", await client.createIndex({
      collection_name: missing, index_type: indexType.IVF_FLAT, extra_params: { nlist: NLIST },
    }), "COLLECTION_NOT_EXISTS");
    code("describeIndex", await client.describeIndex(name), "COLLECTION_NOT_EXISTS");
    code("dropIndex", await client.dropIndex(name), "COLLECTION_NOT_EXISTS");
    code("preloadCollection", await client.preloadCollection(name), "COLLECTION_NOT_EXISTS");
    code("flush", await client.flush({ collection_name_array: [missing] }), "COLLECTION_NOT_EXISTS");
    code("compact", await client.compact(name), "COLLECTION_NOT_EXISTS");
    code("dropCollection", await client.dropCollection(name), "COLLECTION_NOT_EXISTS");
    code("createCollection with dimension 0", await client.createCollection({
      collection_name: missing, dimension: 0, index_file_size: 1024, metric_type: metric.L2,
    }), "ILLEGAL_DIMENSION");
    code("createCollection with a bad name", await client.createCollection({
      collection_name: "1bad-name", dimension: DIM, index_file_size: 1024, metric_type: metric.L2,
    }), "ILLEGAL_COLLECTION_NAME");
    code("createCollection of a binary collection with dimension 60", await client.createCollection({
      collection_name: missing, dimension: 60, index_file_size: 1024, metric_type: metric.HAMMING,
    }), "ILLEGAL_DIMENSION");
    equal("none of them created it", (await client.hasCollection(name)).bool_reply, false);
  });

  await step("IVF_FLAT index", async () => {
    const rows = floatRows(IVF_ROWS, DIM, 3);
    const ids = rows.map((_, i) => i + 1);
    const entries = ids.map((id, i) => [id, rows[i]]);
    ok("createCollection", await client.createCollection({
      collection_name: ivf, dimension: DIM, index_file_size: 1024, metric_type: metric.L2,
    }));
    const ins = await client.insert({
      collection_name: ivf, records: ids.map((id, i) => ({ id, value: rows[i] })), record_type: "float",
    });
    ok("insert", ins);
    equal("insert returns the given ids", (ins.vector_id_array || []).length, IVF_ROWS);
    ok("flush", await client.flush({ collection_name_array: [ivf] }));
    equal("count", (await client.countCollection({ collection_name: ivf })).collection_row_count, String(IVF_ROWS));
    const flat = await client.describeIndex({ collection_name: ivf });
    ok("describeIndex before createIndex", flat);
    equal("a new collection's index is FLAT with no params",
      [flat.collection_name, flat.index_type, flat.extra_params], [ivf, indexType.FLAT, [{ key: "params", value: "{}" }]]);
    ok("createIndex IVF_FLAT", await client.createIndex({
      collection_name: ivf, index_type: indexType.IVF_FLAT, extra_params: { nlist: NLIST },
    }));
    const desc = await client.describeIndex({ collection_name: ivf });
    ok("describeIndex", desc);
    equal("describeIndex index_type", desc.index_type, indexType.IVF_FLAT);
    const kv = (desc.extra_params || [])[0] || {};
    equal("describeIndex params", [kv.key, JSON.parse(kv.value || "null")], ["params", { nlist: NLIST }]);
    const stats = JSON.parse((await client.showCollectionsInfo({ collection_name: ivf })).json_info || "{}");
    const segments = (stats.partitions || []).flatMap((p) => p.segments || []);
    check("the segment is indexed (IVFFLAT)", segments.length > 0 && segments.every((s) => s.index_name === "IVFFLAT"),
      () => show(stats));
    const qids = [1, 2500, 5000];
    const queries = qids.map((id) => ({ float_data: rows[id - 1] }));
    const exact = qids.map((id) => oracle(entries, rows[id - 1], TOP_K, l2));
    checkSearch("search with nprobe = nlist", await client.search({
      collection_name: ivf, topk: TOP_K, extra_params: { nprobe: NLIST }, query_record_array: queries,
    }), exact, { selfIds: qids });
    const one = await client.search({
      collection_name: ivf, topk: TOP_K, extra_params: { nprobe: 1 }, query_record_array: queries,
    });
    ok("search with nprobe 1", one);
    equal("search with nprobe 1 finds each query's own id first",
      qids.map((_, q) => (one.ids || [])[q * TOP_K]), qids.map(String));
    code("search without nprobe", await client.search({
      collection_name: ivf, topk: TOP_K, extra_params: {}, query_record_array: queries,
    }), "ILLEGAL_ARGUMENT");
    code("search with nprobe 0", await client.search({
      collection_name: ivf, topk: TOP_K, extra_params: { nprobe: 0 }, query_record_array: queries,
    }), "ILLEGAL_ARGUMENT");
    ok("dropIndex", await client.dropIndex({ collection_name: ivf }));
    const dropped = await client.describeIndex({ collection_name: ivf });
    equal("after dropIndex the index is FLAT with no params", [dropped.index_type, dropped.extra_params],
      [indexType.FLAT, [{ key: "params", value: "{}" }]]);
    checkSearch("search after dropIndex", await client.search({
      collection_name: ivf, topk: TOP_K, extra_params: {}, query_record_array: queries,
    }), exact, { selfIds: qids });
  });

  await step("binary vectors (HAMMING)", async () => {
    const bytes = BIN_DIM / 8;
    const rows = binaryRows(120, bytes, 4);
    const ids = rows.map((_, i) => 101 + i);
    const entries = ids.map((id, i) => [id, rows[i]]);
    ok("createCollection", await client.createCollection({
      collection_name: bin, dimension: BIN_DIM, index_file_size: 1024, metric_type: metric.HAMMING,
    }));
    const schema = await client.describeCollection({ collection_name: bin });
    equal("describeCollection", [schema.dimension, schema.metric_type], [String(BIN_DIM), metric.HAMMING]);
    const ins = await client.insert({
      collection_name: bin, records: ids.map((id, i) => ({ id, value: rows[i] })), record_type: "binary",
    });
    ok("insert", ins);
    equal("insert returns the given ids", ins.vector_id_array, ids.map(String));
    code("insert with the wrong code length", await client.insert({
      collection_name: bin, records: [{ id: 999, value: rows[0].slice(1) }], record_type: "binary",
    }), "ILLEGAL_DIMENSION");
    ok("flush", await client.flush({ collection_name_array: [bin] }));
    equal("count", (await client.countCollection({ collection_name: bin })).collection_row_count, "120");
    const qidx = [0, 57, 119];
    const truth = new Map(ids.map((id, i) => [String(id), (q) => hamming(rows[qidx[q]], rows[i])]));
    checkSearch("HAMMING search", await client.search({
      collection_name: bin, topk: 5, extra_params: {}, query_record_array: qidx.map((i) => ({ binary_data: rows[i] })),
    }), qidx.map((i) => oracle(entries, rows[i], 5, hamming)), { ties: true, truth, selfIds: qidx.map((i) => ids[i]) });
    code("HAMMING search with the wrong code length", await client.search({
      collection_name: bin, topk: 5, extra_params: {}, query_record_array: [{ binary_data: rows[0].slice(2) }],
    }), "ILLEGAL_DIMENSION");
    const got = await client.getVectorsByID({ collection_name: bin, id_array: [ids[3], 5] });
    ok("getVectorsByID", got);
    const vecs = got.vectors_data || [];
    equal("binary vector read back exactly, unknown id empty",
      [vecs[0] && [...vecs[0].binary_data], vecs[0] && vecs[0].float_data.length, vecs[1] && vecs[1].binary_data.length],
      [rows[3], 0, 0]);
    code("createIndex IVF_SQ8 on a binary collection", await client.createIndex({
      collection_name: bin, index_type: indexType.IVF_SQ8, extra_params: { nlist: NLIST },
    }), "ILLEGAL_INDEX_TYPE");
  });

  await step("drop partition and collections", async () => {
    ok("dropPartition p1", await client.dropPartition({ collection_name: flt, tag: "p1" }));
    equal("showPartitions after dropping p1", (await client.showPartitions({ collection_name: flt })).partition_tag_array,
      ["_default"]);
    equal("count after dropping p1", (await client.countCollection({ collection_name: flt })).collection_row_count,
      "198");
    for (const name of [flt, ivf, bin]) {
      ok(`dropCollection ${name}`, await client.dropCollection({ collection_name: name }));
      equal(`hasCollection(${name}) after the drop`, (await client.hasCollection({ collection_name: name })).bool_reply,
        false);
    }
    const list = await client.showCollections();
    check("showCollections no longer lists them", !(list.collection_names || []).some((n) => n.startsWith(prefix)),
      () => show(list.collection_names));
    code("describeCollection of a dropped collection", await client.describeCollection({ collection_name: flt }),
      "COLLECTION_NOT_EXISTS");
  });

  await step("status of successful replies", async () => {
    // Milvus 1.1 fills every reply's status from Status::message(), which is "OK" on success.
    const calls = [...successReasons.keys()].sort();
    check("every SDK call was answered with SUCCESS at least once", calls.length === SDK_CALLS.length + 1,
      () => `answered: ${calls.join(", ")}`);
    const wrong = calls.filter((c) => [...successReasons.get(c)].some((r) => r !== "OK"));
    check('successful replies carry reason "OK"', wrong.length === 0,
      () => wrong.map((c) => `${c}: ${show([...successReasons.get(c)])}`).join("; "));
  });

  client.milvusClient.close();
}

function summary() {
  return JSON.stringify({
    sdk: `${SDK_PACKAGE}@${sdkVersion}`, address, passed: passed.length, failed: failures.length, failures,
  });
}

const watchdog = setTimeout(() => {
  check("scenario finishes", false, `still running after ${SCENARIO_TIMEOUT_MS / 1000} s (last step: ${currentStep})`);
  console.log(summary());
  process.exit(2);
}, SCENARIO_TIMEOUT_MS);
watchdog.unref();

main().then(
  () => {
    console.log(summary());
    process.exitCode = failures.length ? 1 : 0;
  },
  (err) => {
    check("scenario runs", false, err && err.stack ? err.stack : err);
    console.log(summary());
    process.exitCode = 2;
  },
);
