package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrForeignStore means the store (bucket and prefix) belongs to another cluster.
var ErrForeignStore = errors.New("tiering: the object store belongs to another cluster")

// ClaimStore makes sure the store is this cluster's: it writes clusterID under ClusterClaimKey if
// nothing is there (conditionally where the store supports it, so two clusters racing cannot both
// win) and otherwise compares. Object keys carry topic ids, not a cluster id, and the controller
// deletes objects of topics its metadata does not know; two clusters sharing a bucket and prefix
// would delete each other's history. A claim by another cluster is an error wrapping
// ErrForeignStore that names both ids; callers must then neither upload nor sweep.
//
// Idempotent and safe to call from every broker: all of one cluster's brokers write the same bytes.
func ClaimStore(ctx context.Context, s Store, clusterID string) error {
	if clusterID == "" {
		return errors.New("tiering: claiming the object store: the cluster id is not known yet")
	}
	if owner, err := storeOwner(ctx, s); err == nil {
		return checkOwner(owner, clusterID)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("tiering: reading the object store's owner: %w", err)
	}
	body := bytes.NewReader([]byte(clusterID + "\n"))
	err := errors.ErrUnsupported
	if cp, ok := s.(ConditionalPutter); ok {
		err = cp.PutIfAbsent(ctx, ClusterClaimKey, body, body.Size())
	}
	if errors.Is(err, errors.ErrUnsupported) {
		// Every backend has conditional put; a wrapper without it (MeteredStore over a test
		// double) leaves a window for two clusters claiming one fresh store at the same moment.
		err = s.Put(ctx, ClusterClaimKey, body, body.Size())
	}
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("tiering: claiming the object store for cluster %s: %w", clusterID, err)
	}
	owner, err := storeOwner(ctx, s)
	if err != nil {
		return fmt.Errorf("tiering: reading the object store's owner back: %w", err)
	}
	return checkOwner(owner, clusterID)
}

func storeOwner(ctx context.Context, s Store) (string, error) {
	b, err := ReadRange(ctx, s, ClusterClaimKey, 0, -1)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func checkOwner(owner, clusterID string) error {
	if owner != clusterID {
		return fmt.Errorf("%w: %s holds cluster id %q, this cluster is %q; give this cluster its own bucket or prefix, or delete the other cluster's objects (and %s) if it is gone", ErrForeignStore, ClusterClaimKey, owner, clusterID, ClusterClaimKey)
	}
	return nil
}
