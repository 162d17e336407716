package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// TestArchiverCompressesOnlyWhatShrinks: with ArchiverConfig.Compress, segments of compressible
// uncompressed batches go up as lz4 chunks, and segments of uncompressed but incompressible
// payloads (random bytes: encrypted or application-compressed data) go up verbatim; both read back
// byte-identical, and Stats count the segment bytes next to the smaller object bytes.
func TestArchiverCompressesOnlyWhatShrinks(t *testing.T) {
	for _, random := range []bool{false, true} {
		t.Run(fmt.Sprintf("random=%v", random), func(t *testing.T) {
			cfg := segment.DefaultConfig()
			cfg.SegmentBytes = 64 << 10
			l, err := segment.Open(filepath.Join(t.TempDir(), "p"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			data := jsonSegment(300<<10, random)
			if _, err := l.AppendReplicated(data); err != nil {
				t.Fatal(err)
			}
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
			mem := tiering.NewMemStore()
			m := &fakeManifest{}
			var topic [16]byte
			topic[0] = 1
			arch := tiering.NewPartitionArchiver(mem, topic, 0, &testLog{l: l, limit: -1, epoch: 1}, m, tiering.ArchiverConfig{Compress: true})
			n, err := arch.RunOnce(context.Background())
			if err != nil || n < 4 {
				t.Fatalf("RunOnce = %d, %v", n, err)
			}
			var logical []byte
			var objBytes, segBytes int64
			for _, s := range m.RemoteSegments() {
				obj, err := tiering.ReadRange(context.Background(), mem, s.ObjectKey, 0, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				f, err := tiering.DecodeFooter(obj, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				lz4 := f.Flags&tiering.FlagLZ4Chunks != 0
				if lz4 == random {
					t.Fatalf("%s: lz4 chunks %v for random=%v (stored %d of %d bytes)", s.ObjectKey, lz4, random, f.StoredLen, f.DataLen)
				}
				rr, err := tiering.OpenRemote(context.Background(), mem, s.ObjectKey, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				res, err := rr.Read(context.Background(), s.BaseOffset, 1<<30, true)
				if err != nil {
					t.Fatal(err)
				}
				logical = append(logical, res.Data...)
				objBytes += s.Size
				segBytes += f.DataLen
			}
			if !bytes.Equal(logical, data) {
				t.Fatalf("objects read back %d bytes, the log holds %d (or they differ)", len(logical), len(data))
			}
			st := arch.Stats()
			if st.BytesUploaded != objBytes || st.SegmentBytes != segBytes || segBytes != int64(len(data)) {
				t.Fatalf("stats %+v; objects %d bytes, segments %d, data %d", st, objBytes, segBytes, len(data))
			}
			if !random && 2*objBytes > segBytes {
				t.Fatalf("compressible: %d object bytes for %d segment bytes", objBytes, segBytes)
			}
			if random && objBytes <= segBytes {
				t.Fatalf("random: %d object bytes for %d segment bytes, want verbatim + footers", objBytes, segBytes)
			}
		})
	}
}

// TestArchiverUploadsVerbatimWhenTempFileFails: a compressed data section above the memory bound
// goes to a temporary file; when none can be made (TMPDIR missing), the archiver uploads the segment
// verbatim instead of failing (and retrying) forever, and spill files never outlive an upload.
func TestArchiverUploadsVerbatimWhenTempFileFails(t *testing.T) {
	defer func(old int64) { *tiering.CompressMemBytes = old }(*tiering.CompressMemBytes)
	*tiering.CompressMemBytes = 1 << 10
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("tmpdir-broken=%v", broken), func(t *testing.T) {
			tmp := t.TempDir()
			if broken {
				tmp = filepath.Join(tmp, "missing")
			}
			t.Setenv("TMPDIR", tmp)
			cfg := segment.DefaultConfig()
			cfg.SegmentBytes = 64 << 10
			l, err := segment.Open(filepath.Join(t.TempDir(), "p"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			data := jsonSegment(200<<10, false)
			if _, err := l.AppendReplicated(data); err != nil {
				t.Fatal(err)
			}
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
			mem, m := tiering.NewMemStore(), &fakeManifest{}
			arch := tiering.NewPartitionArchiver(mem, meta.TopicID{2}, 0, &testLog{l: l, limit: -1, epoch: 1}, m, tiering.ArchiverConfig{Compress: true})
			if n, err := arch.RunOnce(context.Background()); err != nil || n < 3 {
				t.Fatalf("RunOnce = %d, %v", n, err)
			}
			var logical []byte
			for _, s := range m.RemoteSegments() {
				obj, err := tiering.ReadRange(context.Background(), mem, s.ObjectKey, 0, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				f, err := tiering.DecodeFooter(obj, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				if lz4 := f.Flags&tiering.FlagLZ4Chunks != 0; lz4 == broken {
					t.Fatalf("%s: lz4 %v with TMPDIR broken=%v", s.ObjectKey, lz4, broken)
				}
				rr, err := tiering.OpenRemote(context.Background(), mem, s.ObjectKey, s.Size)
				if err != nil {
					t.Fatal(err)
				}
				res, err := rr.Read(context.Background(), s.BaseOffset, 1<<30, true)
				if err != nil {
					t.Fatal(err)
				}
				logical = append(logical, res.Data...)
			}
			if !bytes.Equal(logical, data) {
				t.Fatal("objects do not read back as the log")
			}
			if !broken {
				if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
					t.Fatalf("temporary files left after the uploads: %v", ents)
				}
			}
		})
	}
}
