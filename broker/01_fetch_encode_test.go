package broker

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse builds a FetchResponse exercising every field around the record sets:
// several topics (names and ids), partitions with large, small, empty and null record sets,
// errors, aborted transactions, a preferred read replica, the flexible tagged fields (diverging
// epoch, current leader, snapshot id), and node endpoints.
func randomFetchResponse(r *rand.Rand, version int16) *kmsg.FetchResponse {
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = version
	fr.ThrottleMillis = r.Int32N(100)
	fr.SessionID = r.Int32()
	if r.IntN(8) == 0 {
		fr.ErrorCode = int16(r.IntN(120))
	}
	for range r.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, 1+r.IntN(200)))
		for i := range t.TopicID {
			t.TopicID[i] = byte(r.Uint32())
		}
		for range r.IntN(6) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = r.Int32N(1 << 20)
			p.HighWatermark = r.Int64()
			p.LastStableOffset = r.Int64N(1 << 40)
			p.LogStartOffset = int64(r.IntN(300))
			if r.IntN(4) == 0 {
				p.ErrorCode = int16(r.IntN(120))
			}
			for range r.IntN(3) {
				a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				a.ProducerID, a.FirstOffset = r.Int64(), r.Int64()
				p.AbortedTransactions = append(p.AbortedTransactions, a)
			}
			p.PreferredReadReplica = r.Int32N(5) - 1
			if r.IntN(3) == 0 {
				p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = r.Int32N(9), r.Int64()
			}
			if r.IntN(3) == 0 {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = r.Int32N(4), r.Int32N(9)
			}
			if r.IntN(5) == 0 {
				p.SnapshotID.EndOffset, p.SnapshotID.Epoch = r.Int64(), r.Int32()
			}
			switch r.IntN(6) {
			case 0:
				p.RecordBatches = nil // null
			case 1:
				p.RecordBatches = []byte{} // empty
			case 2:
				p.RecordBatches = randBytes(r, 1+r.IntN(200)) // small
			default:
				// Sizes around the uvarint length boundaries (2^7, 2^14, 2^21) and large.
				sizes := []int{126, 127, 128, 16383, 16384, 1 << 20, 2<<20 + 3}
				p.RecordBatches = randBytes(r, sizes[r.IntN(len(sizes))]+r.IntN(3)-1)
			}
			t.Partitions = append(t.Partitions, p)
		}
		fr.Topics = append(fr.Topics, t)
	}
	for range r.IntN(3) {
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port = r.Int32N(9), "host-"+string(rune('a'+r.IntN(26))), r.Int32N(65536)
		if r.IntN(2) == 0 {
			b.Rack = kmsg.StringPtr("rack")
		}
		fr.Brokers = append(fr.Brokers, b)
	}
	return fr
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// splicedFrame encodes fr through the splicing path (threshold minSplice) and returns the bytes a
// socket would receive, whether the splice path was taken, and how many record sets were written
// in place.
func splicedFrame(t testing.TB, fr *kmsg.FetchResponse, corr int32, minSplice int) ([]byte, bool, int) {
	t.Helper()
	var fb frameBuilder
	fb.reset()
	fb.buf = append(fb.buf, "previous frame"...) // frames after another in the same write
	spliced := fb.addFetch(corr, fr, takeAttachment(fr).split, minSplice)
	if !spliced {
		fb.buf = appendResponse(fb.buf, response{corr: corr, kresp: fr})
	}
	var out bytes.Buffer
	ext := 0
	for _, p := range fb.parts {
		if p.ext != nil {
			ext++
		}
	}
	n, err := fb.writeTo(&out)
	if err != nil || int(n) != out.Len() {
		t.Fatalf("writeTo: %d bytes, %v", n, err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("previous frame")) {
		t.Fatal("earlier bytes of the write lost")
	}
	if spliced && fb.size != out.Len()-len("previous frame") {
		t.Fatalf("size accounted %d, frame %d", fb.size, out.Len()-len("previous frame"))
	}
	return out.Bytes()[len("previous frame"):], spliced, ext
}

// The bytes on the wire of a spliced fetch response are exactly kmsg's plain encoding, for every
// Fetch version kmsg knows (flexible from v12), with null, empty, small and large record sets
// around every field that precedes or follows them; and the response is left as it was.
func TestFetchSpliceMatchesPlainEncoding(t *testing.T) {
	maxV := kmsg.NewPtrFetchRequest().MaxVersion()
	if maxV < 16 {
		t.Fatalf("kmsg knows Fetch only up to v%d", maxV)
	}
	spliceCount := 0
	for v := int16(4); v <= maxV; v++ {
		for seed := range uint64(40) {
			r := rand.New(rand.NewPCG(seed, uint64(v)))
			fr := randomFetchResponse(r, v)
			want := appendResponse(nil, response{corr: int32(seed), kresp: fr})
			before := fr.AppendTo(nil)
			got, spliced, ext := splicedFrame(t, fr, int32(seed), 0)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d seed %d: spliced frame (%d bytes) differs from kmsg's (%d bytes) at byte %d",
					v, seed, len(got), len(want), commonPrefixLen(got, want))
			}
			if !bytes.Equal(fr.AppendTo(nil), before) {
				t.Fatalf("v%d seed %d: the response was changed by encoding it", v, seed)
			}
			nonEmpty := 0
			for _, tp := range fr.Topics {
				for _, p := range tp.Partitions {
					if len(p.RecordBatches) > 0 {
						nonEmpty++
					}
				}
			}
			// Every non-empty record set must have been written in place, not copied.
			if nonEmpty > 0 && (!spliced || ext != nonEmpty) {
				t.Fatalf("v%d seed %d: %d non-empty record sets, spliced=%v with %d in place", v, seed, nonEmpty, spliced, ext)
			}
			if nonEmpty == 0 && spliced {
				t.Fatalf("v%d seed %d: nothing to splice but the splice path was taken", v, seed)
			}
			if spliced {
				spliceCount++
			}
			// And a client decodes it back to the same response.
			back := kmsg.NewPtrFetchResponse()
			back.Version = v
			body := got[8:]
			if fr.IsFlexible() {
				body = body[1:]
			}
			if err := back.ReadFrom(body); err != nil || !bytes.Equal(back.AppendTo(nil), before) {
				t.Fatalf("v%d seed %d: decoding the spliced frame: %v", v, seed, err)
			}
		}
	}
	if spliceCount < 100 {
		t.Fatalf("only %d responses took the splice path", spliceCount)
	}
}

// Below the threshold the ordinary encoding is used (and is still the same bytes).
func TestFetchSpliceThreshold(t *testing.T) {
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 12
	tp := kmsg.NewFetchResponseTopic()
	tp.Topic = "t"
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = make([]byte, 1000)
	tp.Partitions = append(tp.Partitions, p)
	fr.Topics = append(fr.Topics, tp)
	got, spliced, _ := splicedFrame(t, fr, 7, spliceMinRecordBytes)
	if spliced {
		t.Fatal("1000 record bytes spliced")
	}
	if !bytes.Equal(got, appendResponse(nil, response{corr: 7, kresp: fr})) {
		t.Fatal("plain frame differs")
	}
	fr.Topics[0].Partitions[0].RecordBatches = make([]byte, spliceMinRecordBytes)
	if _, spliced, _ = splicedFrame(t, fr, 7, spliceMinRecordBytes); !spliced {
		t.Fatal("a response at the threshold was not spliced")
	}
}

// findRecordFields refuses encodings that differ anywhere but at record-set prefixes, so a kmsg
// change that broke the assumption would fall back to copying, never send wrong bytes.
func TestFindRecordFieldsRefusesOtherDifferences(t *testing.T) {
	e0 := []byte{9, 9, 0, 0, 0, 0, 7, 7}
	e1 := []byte{9, 9, 0, 0, 0, 1, 42, 7, 7}
	if at, ok := findRecordFields(e0, e1, false, nil); !ok || len(at) != 1 || at[0] != 5 {
		t.Fatalf("one int32 prefix: %v %v", at, ok)
	}
	for name, c := range map[string][2][]byte{
		"other byte differs":  {{9, 9, 0, 0, 0, 0, 7, 7}, {9, 8, 0, 0, 0, 1, 42, 7, 7}},
		"prefix not zero":     {{9, 9, 0, 0, 5, 0, 7, 7}, {9, 9, 0, 0, 5, 1, 42, 7, 7}},
		"e1 longer at end":    {{9, 9}, {9, 9, 1}},
		"e1 too short":        {{9, 9, 0, 0, 0, 0}, {9, 9, 0, 0, 0, 1}},
		"prefix at the start": {{0, 7}, {1, 42, 7}},
	} {
		if _, ok := findRecordFields(c[0], c[1], false, nil); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if at, ok := findRecordFields([]byte{3, 1, 4}, []byte{3, 2, 0, 4}, true, nil); !ok || len(at) != 1 || at[0] != 1 {
		t.Fatalf("one uvarint prefix: %v %v", at, ok)
	}
	if _, ok := findRecordFields([]byte{3, 0, 4}, []byte{3, 2, 0, 4}, true, nil); ok {
		t.Fatal("flexible: a null prefix accepted as empty")
	}
}

// FuzzFetchSplice: any response shape the generator makes from the fuzz input encodes to kmsg's
// bytes through the splice path.
func FuzzFetchSplice(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 12, 16} {
		f.Add(s, int16(s%13+4))
	}
	f.Fuzz(func(t *testing.T, seed uint64, v int16) {
		if v < 4 || v > 16 {
			return
		}
		fr := randomFetchResponse(rand.New(rand.NewPCG(seed, 0)), v)
		want := appendResponse(nil, response{corr: 1, kresp: fr})
		if got, _, _ := splicedFrame(t, fr, 1, 0); !bytes.Equal(got, want) {
			t.Fatalf("v%d seed %d: differs at byte %d", v, seed, commonPrefixLen(got, want))
		}
	})
}

// Through a real connection: large fetch responses (spliced) pipelined on one connection arrive
// as exactly kmsg's encoding of what they carry, at a non-flexible and at flexible versions.
func TestFetchSplicedOnTheWire(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "wire", 2, nil)
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("wire"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(64<<10))
	val := make([]byte, 1000)
	for i := range 600 {
		val[0] = byte(i)
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: val}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, b)
	var reqs []byte
	versions := []int16{4, 11, 12, 13, 16}
	for i, v := range versions {
		req := fetchRequest(b, "wire", 0, 0, 1, 50<<20, 256<<10)
		req.Version = v
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = 1, 256<<10
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		if v >= 13 {
			mt, ok := b.meta.State().Topic("wire")
			if !ok {
				t.Fatal("topic wire not in metadata")
			}
			req.Topics[0].TopicID = mt.ID
		}
		reqs = append(reqs, frame(req, int32(i))...)
	}
	rc.write(reqs) // pipelined: the writer may coalesce the responses into one writev
	for i, v := range versions {
		var size [4]byte
		if _, err := io.ReadFull(rc.br, size[:]); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 4+binary.BigEndian.Uint32(size[:]))
		copy(raw, size[:])
		if _, err := io.ReadFull(rc.br, raw[4:]); err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		body := raw[8:]
		if resp.IsFlexible() {
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		recBytes := 0
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					t.Fatalf("v%d partition %d: %v", v, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
				recBytes += len(p.RecordBatches)
			}
		}
		if recBytes < 2*spliceMinRecordBytes {
			t.Fatalf("v%d: only %d record bytes (want enough to splice)", v, recBytes)
		}
		if want := appendResponse(nil, response{corr: int32(i), kresp: resp}); !bytes.Equal(raw, want) {
			t.Fatalf("v%d: %d bytes on the wire differ from kmsg's %d at byte %d", v, len(raw), len(want), commonPrefixLen(raw, want))
		}
	}
}

// splitResponse registers every non-empty record set of fr as random slices (as a read from the
// bucket across cached chunks comes), leaving the first slice in RecordBatches as handleFetch
// does; returns how many slices there are.
func splitResponse(r *rand.Rand, fr *kmsg.FetchResponse) int {
	var split []splitRecordSet
	n := 0
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			p := &fr.Topics[i].Partitions[j]
			if len(p.RecordBatches) < 2 {
				n += min(len(p.RecordBatches), 1)
				continue
			}
			var parts [][]byte
			for rest := p.RecordBatches; len(rest) > 0; {
				k := min(len(rest), 1+r.IntN(len(p.RecordBatches)/2+1))
				parts, rest = append(parts, rest[:k:k]), rest[k:]
			}
			n += len(parts)
			p.RecordBatches = parts[0]
			split = append(split, splitRecordSet{topic: i, partition: j, parts: parts})
		}
	}
	attachFetch(fr, fetchAttachment{split: split})
	return n
}

// A record set registered in several slices (readResult.parts) goes on the wire as kmsg's
// encoding of the whole set: spliced, each slice written in place; below the splice threshold,
// joined into RecordBatches first. Either way the registration is consumed.
func TestFetchSplitRecordSets(t *testing.T) {
	maxV := kmsg.NewPtrFetchRequest().MaxVersion()
	splitSeen := 0
	for v := int16(4); v <= maxV; v++ {
		for seed := range uint64(20) {
			for _, minSplice := range []int{0, 1 << 30} {
				r := rand.New(rand.NewPCG(seed, uint64(v)))
				fr := randomFetchResponse(r, v)
				want := appendResponse(nil, response{corr: 3, kresp: fr})
				slices := splitResponse(r, fr)
				pending := attachPending.Load()
				got, spliced, ext := splicedFrame(t, fr, 3, minSplice)
				if !bytes.Equal(got, want) {
					t.Fatalf("v%d seed %d minSplice %d: frame (%d bytes) differs from the whole sets' (%d bytes) at byte %d",
						v, seed, minSplice, len(got), len(want), commonPrefixLen(got, want))
				}
				if spliced && ext != slices {
					t.Fatalf("v%d seed %d: %d slices, %d written in place", v, seed, slices, ext)
				}
				if minSplice > 0 && spliced {
					t.Fatal("spliced below the threshold")
				}
				if pending > 0 {
					splitSeen++
					if attachPending.Load() != pending-1 {
						t.Fatalf("v%d seed %d: registration not consumed (%d pending, was %d)", v, seed, attachPending.Load(), pending)
					}
				}
			}
		}
	}
	if splitSeen < 50 {
		t.Fatalf("only %d responses had split record sets", splitSeen)
	}
}

// A response with split record sets that is never written (its connection closed) does not stay
// registered: the cleanup drops the entry once the response is unreachable.
func TestFetchSplitRecordSetsDroppedUnwritten(t *testing.T) {
	before := attachPending.Load()
	func() {
		fr := randomFetchResponse(rand.New(rand.NewPCG(1, 16)), 16)
		p := kmsg.NewFetchResponseTopicPartition()
		p.RecordBatches = make([]byte, 100)
		tp := kmsg.NewFetchResponseTopic()
		tp.Partitions = append(tp.Partitions, p)
		fr.Topics = append(fr.Topics, tp)
		splitResponse(rand.New(rand.NewPCG(2, 2)), fr)
	}()
	if attachPending.Load() != before+1 {
		t.Fatalf("%d registrations pending, want %d", attachPending.Load(), before+1)
	}
	for i := 0; i < 200 && attachPending.Load() > before; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := attachPending.Load(); n != before {
		t.Fatalf("%d registrations still pending after the response became unreachable, want %d", n, before)
	}
}
