// kafkajs driver for Sediment's compatibility tests (integration/compat_kafkajs_test.go).
// admin.createTopics creates the topics, an idempotent producer (acks=-1) produces with each codec
// (snappy through kafkajs-snappy, lz4 through lz4js — both pure JS; kafkajs has no pure-JS zstd),
// a consumer in a group (kafkajs has no group-less consumer) reads each topic from the beginning.
// Record formulas MUST match integration/compat_util_test.go. Prints one JSON result on stdout.
'use strict'
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4js = require('lz4js')

// LZ4 through lz4js (pure JS, LZ4 frame format as Kafka uses): the kafkajs-lz4 package needs a
// native build. kafkajs calls compress with its Encoder (bytes in .buffer).
const LZ4Codec = () => ({
  async compress (encoder) { return Buffer.from(lz4js.compress(encoder.buffer)) },
  async decompress (buffer) { return Buffer.from(lz4js.decompress(buffer)) },
})

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = LZ4Codec

const CLIENT = 'kafkajs'
const codecType = {
  none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD,
}

function arg (name, def) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 ? process.argv[i + 1] : def
}
const bootstrap = arg('bootstrap')
const mode = arg('mode', 'roundtrip')
const codecs = arg('codecs', '').split(',').filter(Boolean)
const n = parseInt(arg('n', '0'), 10)
const rf = parseInt(arg('rf', '1'), 10) // replication factor of the topics the round trip creates
const timeoutMs = parseFloat(arg('timeout', '30')) * 1000

const key = (i) => `key-${i % 7}`
const value = (codec, i) => `${CLIENT}|${codec}|${i}|\u00e9t\u00e9 ${'sediment '.repeat(16)}`
const headers = (codec, i) => [['part', String(i % 3)], ['codec', codec]]
const topic = (codec) => `compat-${codec}`

// kafkajs logs with console.log by default; keep stdout for the JSON result.
const logCreator = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`)
}

// Consumer group: the first consumer processes `first` records and commits them with commitOffsets
// (autoCommit off), disconnects; a second consumer of the same group reads the rest.
async function group () {
  const groupId = arg('group')
  const t = arg('topic', 'compat-group')
  const res = { version: require('kafkajs/package.json').version, first: [], second: [], errors: [] }
  const kafka = new Kafka({ clientId: 'sediment-compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })
  const consume = async (limit, commit) => {
    const got = []
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 })
    try {
      await consumer.connect()
      await consumer.subscribe({ topic: t, fromBeginning: true })
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, timeoutMs)
        consumer.run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            if (got.length >= limit) return // processed enough: neither recorded nor committed
            got.push({ topic, partition, offset: Number(message.offset), key: message.key ? message.key.toString() : '', value: message.value ? message.value.toString() : '', headers: [] })
            if (got.length === limit) { clearTimeout(timer); resolve() }
          },
        }).catch(reject)
      })
      if (commit) {
        const next = {}
        for (const r of got) next[r.partition] = Math.max(next[r.partition] || 0, r.offset + 1)
        await consumer.commitOffsets(Object.entries(next).map(([p, o]) => ({ topic: t, partition: Number(p), offset: String(o) })))
      }
    } catch (e) {
      res.errors.push(String(e && e.stack || e))
    } finally {
      await consumer.disconnect().catch(() => {})
    }
    return got
  }
  res.first = await consume(parseInt(arg('first'), 10), true)
  res.second = await consume(parseInt(arg('rest'), 10), false)
  await new Promise((resolve) => process.stdout.write(JSON.stringify(res) + '\n', resolve))
}

// fetchTopicOffsetsByTimestamp on partition 0 of --topic for each of --times.
async function times () {
  const res = { offsets: {}, errors: [] }
  const kafka = new Kafka({ clientId: 'sediment-compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })
  const admin = kafka.admin()
  try {
    await admin.connect()
    for (const ts of arg('times').split(',').filter(Boolean)) {
      const offs = await admin.fetchTopicOffsetsByTimestamp(arg('topic'), Number(ts))
      const p0 = offs.find((o) => o.partition === 0)
      if (p0) res.offsets[ts] = Number(p0.offset)
      else res.errors.push(`no partition 0 in ${JSON.stringify(offs)}`)
    }
  } catch (e) {
    res.errors.push(String(e && e.stack || e))
  } finally {
    await admin.disconnect().catch(() => {})
  }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(res) + '\n', resolve))
}

// runUntil runs consumer until want messages were handed to it (appended to out as compat records)
// or the timeout.
function runUntil (consumer, want, out) {
  return new Promise((resolve, reject) => {
    let got = 0
    const timer = setTimeout(resolve, timeoutMs)
    consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const hs = Object.entries(message.headers || {}).map(([k, v]) => [k, v == null ? '' : v.toString()])
        out.push({ topic, partition, offset: Number(message.offset), key: message.key ? message.key.toString() : '', value: message.value ? message.value.toString() : '', headers: hs })
        if (++got >= want) { clearTimeout(timer); resolve() }
      },
    }).catch(reject)
  })
}

// Replay from the bucket (integration/compat_replay_util_test.go). replay-produce: the idempotent
// producer sends --n records to --topic in --rounds sends (each acknowledged before the next).
// replay-consume: a consumer of a fresh group seeks every assigned partition to offset 0 when it
// joins (kafkajs has no group-less consumer) and reads until --n records or the timeout.
const replayCodec = 'replay'
const replayTopic = arg('topic', 'compat-replay')

async function replayProduce () {
  const res = { client: CLIENT, version: require('kafkajs/package.json').version, created: {}, produced: {}, consumed: [], notes: [] }
  const kafka = new Kafka({ clientId: 'sediment-compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })
  const rounds = parseInt(arg('rounds', '1'), 10)
  const per = Math.floor(n / rounds)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
  try {
    await producer.connect()
    for (let r = 0; r < rounds; r++) {
      const messages = []
      for (let i = r * per; i < (r + 1) * per; i++) {
        const h = {}
        for (const [k, v] of headers(replayCodec, i)) h[k] = v
        messages.push({ key: key(i), value: value(replayCodec, i), headers: h })
      }
      await producer.send({ topic: replayTopic, acks: -1, messages })
    }
    res.produced[replayCodec] = ''
  } catch (e) {
    res.produced[replayCodec] = String(e && e.stack || e)
  } finally {
    await producer.disconnect().catch(() => {})
  }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(res) + '\n', resolve))
}

async function replayConsume () {
  const res = { client: CLIENT, version: require('kafkajs/package.json').version, created: {}, produced: {}, consumed: [], notes: [] }
  const kafka = new Kafka({ clientId: 'sediment-compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })
  const consumer = kafka.consumer({ groupId: 'compat-kafkajs-replay', sessionTimeout: 10000, heartbeatInterval: 1000 })
  try {
    await consumer.connect()
    await consumer.subscribe({ topic: replayTopic, fromBeginning: true })
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      for (const p of (e.payload.memberAssignment[replayTopic] || [])) consumer.seek({ topic: replayTopic, partition: p, offset: '0' })
    })
    await runUntil(consumer, n, res.consumed)
  } catch (e) {
    res.notes.push(`replay consume: ${e && e.stack || e}`)
  } finally {
    await consumer.disconnect().catch(() => {})
  }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(res) + '\n', resolve))
}

async function main () {
  if (mode === 'group') return group()
  if (mode === 'time') return times()
  if (mode === 'replay-produce') return replayProduce()
  if (mode === 'replay-consume') return replayConsume()
  const res = { client: CLIENT, version: require('kafkajs/package.json').version, created: {}, produced: {}, consumed: [], notes: [] }
  const kafka = new Kafka({ clientId: 'sediment-compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })

  const admin = kafka.admin()
  try {
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: codecs.map((c) => ({ topic: topic(c), numPartitions: 3, replicationFactor: rf })) })
    for (const c of codecs) res.created[topic(c)] = ''
  } catch (e) {
    for (const c of codecs) res.created[topic(c)] = String(e && e.stack || e)
  }
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'compat-delete', numPartitions: 3, replicationFactor: rf }] })
    await admin.deleteTopics({ topics: ['compat-delete'] })
    res.deleted = { 'compat-delete': '' }
  } catch (e) {
    res.deleted = { 'compat-delete': String(e && e.stack || e) }
  } finally {
    await admin.disconnect().catch(() => {})
  }

  for (const c of codecs) {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
    try {
      await producer.connect()
      const messages = []
      for (let i = 0; i < n; i++) {
        const h = {}
        for (const [k, v] of headers(c, i)) h[k] = v
        messages.push({ key: key(i), value: value(c, i), headers: h })
      }
      await producer.send({ topic: topic(c), acks: -1, compression: codecType[c], messages })
      res.produced[c] = ''
    } catch (e) {
      res.produced[c] = String(e && e.stack || e)
    } finally {
      await producer.disconnect().catch(() => {})
    }
  }

  for (const c of codecs) {
    const consumer = kafka.consumer({ groupId: `compat-kafkajs-${c}`, sessionTimeout: 10000, heartbeatInterval: 1000 })
    try {
      await consumer.connect()
      await consumer.subscribe({ topic: topic(c), fromBeginning: true })
      await runUntil(consumer, n, res.consumed)
    } catch (e) {
      res.notes.push(`consume ${c}: ${e && e.stack || e}`)
    } finally {
      await consumer.disconnect().catch(() => {})
    }
  }
  // stdout is a pipe, written asynchronously: exit only once the result is flushed.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(res) + '\n', resolve))
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1) })
