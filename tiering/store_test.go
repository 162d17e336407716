package tiering_test

import (
	"testing"

	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
)

func TestMemStoreConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) tiering.Store { return tiering.NewMemStore() })
}

func TestFileStoreConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) tiering.Store {
		s, err := tiering.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
