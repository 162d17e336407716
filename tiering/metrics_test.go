package tiering_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

func TestMeteredStoreConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) tiering.Store { return tiering.NewMeteredStore(tiering.NewMemStore()) })
}

func TestMeteredStoreCounts(t *testing.T) {
	ctx := context.Background()
	m := tiering.NewMeteredStore(tiering.NewMemStore())
	tiering.PutBytes(ctx, m, "a", make([]byte, 1000))
	tiering.PutBytes(ctx, m, "b", make([]byte, 500))
	if _, err := tiering.ReadRange(ctx, m, "a", 100, 300); err != nil {
		t.Fatal(err)
	}
	m.Head(ctx, "missing") // not found is not an error of the store
	m.List(ctx, "")
	m.Delete(ctx, "b")
	tiering.PutBytes(ctx, m, "bad//key", nil) // invalid key: counted as an error
	var buf bytes.Buffer
	m.WriteMetrics(&buf)
	out := buf.String()
	for _, want := range []string{
		`sediment_objectstore_requests_total{op="put"} 3`,
		`sediment_objectstore_requests_total{op="get"} 1`,
		`sediment_objectstore_requests_total{op="head"} 1`,
		`sediment_objectstore_requests_total{op="list"} 1`,
		`sediment_objectstore_requests_total{op="delete"} 1`,
		`sediment_objectstore_errors_total{op="put"} 1`,
		`sediment_objectstore_errors_total{op="head"} 0`,
		`sediment_objectstore_bytes_total{op="put"} 1500`,
		`sediment_objectstore_bytes_total{op="get"} 300`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// 3 PUT + 1 LIST at $0.005/1000, GET + HEAD at $0.0004/1000.
	if got, want := m.EstimatedCostUSD(), (4*0.005+2*0.0004)/1000; got < want*0.999 || got > want*1.001 {
		t.Errorf("cost estimate %g, want %g", got, want)
	}
}
