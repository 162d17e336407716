package tiering_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/tiering"
)

func TestClaimStore(t *testing.T) {
	ctx := context.Background()
	fs, err := tiering.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]tiering.Store{"mem": tiering.NewMemStore(), "file": fs} {
		t.Run(name, func(t *testing.T) {
			if err := tiering.ClaimStore(ctx, s, ""); err == nil {
				t.Fatal("claim with no cluster id succeeded")
			}
			if err := tiering.ClaimStore(ctx, s, "clusterA"); err != nil {
				t.Fatalf("first claim: %v", err)
			}
			if got, err := tiering.ReadRange(ctx, s, tiering.ClusterClaimKey, 0, -1); err != nil || strings.TrimSpace(string(got)) != "clusterA" {
				t.Fatalf("%s holds %q (%v)", tiering.ClusterClaimKey, got, err)
			}
			if err := tiering.ClaimStore(ctx, s, "clusterA"); err != nil {
				t.Fatalf("second claim by the same cluster: %v", err)
			}
			err := tiering.ClaimStore(ctx, s, "clusterB")
			if !errors.Is(err, tiering.ErrForeignStore) || !strings.Contains(err.Error(), "clusterA") || !strings.Contains(err.Error(), "clusterB") {
				t.Fatalf("claim by another cluster = %v, want ErrForeignStore naming both ids", err)
			}
			if got, _ := tiering.ReadRange(ctx, s, tiering.ClusterClaimKey, 0, -1); strings.TrimSpace(string(got)) != "clusterA" {
				t.Fatalf("the other cluster's claim overwrote the owner: %q", got)
			}
		})
	}
}
