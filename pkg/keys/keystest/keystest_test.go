package keystest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
)

func TestStoreContract(t *testing.T) {
	keystest.RunStoreContract(t, func(*testing.T) (keys.Store, keystest.CountUse) {
		s := keystest.NewStore()
		return s, s.CountUse
	})
}

func newKey(id string) *keys.Key {
	return &keys.Key{ID: id, Project: "acme", Status: keys.StatusActive, Tier: "public", CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Writes counts successful Applies only: a failed one wrote nothing.
func TestWritesAndFailWith(t *testing.T) {
	ctx := context.Background()
	s := keystest.NewStore()
	k := newKey("key_000000000000000000000001")
	if err := s.Apply(ctx, keys.Tx{Create: []*keys.Key{k}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, keys.Tx{Create: []*keys.Key{k}}); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	if got := s.Writes(); got != 1 {
		t.Fatalf("Writes = %d after one good and one failed Apply, want 1", got)
	}

	s.FailWith(keys.ErrUnavailable)
	k2 := newKey("key_000000000000000000000002")
	if err := s.Apply(ctx, keys.Tx{Create: []*keys.Key{k2}}); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("Apply after FailWith: %v", err)
	}
	if _, err := s.GetKey(ctx, k2.ID); !errors.Is(err, keys.ErrNotFound) || s.Writes() != 1 {
		t.Fatalf("a failed Apply wrote: GetKey err %v, Writes %d", err, s.Writes())
	}

	s.FailWith(nil)
	if err := s.Apply(ctx, keys.Tx{Create: []*keys.Key{k2}}); err != nil || s.Writes() != 2 {
		t.Fatalf("Apply after FailWith(nil): %v, Writes %d", err, s.Writes())
	}
}

// The fake refuses what pkg/dynamo cannot serve, rather than answering
// something the real store would not.
func TestStrictInputs(t *testing.T) {
	ctx := context.Background()
	s := keystest.NewStore()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.ListKeys(ctx, keys.ListQuery{Project: "acme", Now: now}); err == nil {
		t.Error("ListKeys with limit 0 accepted")
	}
	if _, _, err := s.ListKeys(ctx, keys.ListQuery{Project: "acme", Limit: 5, Now: now, Filter: keys.KeyFilter{Status: "gone"}}); err == nil {
		t.Error("ListKeys with an unknown status accepted")
	}
	if _, _, err := s.ListAudit(ctx, keys.AuditQuery{Project: "acme", Limit: -1, Now: now}); err == nil {
		t.Error("ListAudit with limit -1 accepted")
	}
	tx := keys.Tx{}
	for i := range 101 {
		tx.Events = append(tx.Events, &keys.AuditEvent{ID: fmt.Sprintf("evt_%016x", i), Project: "acme", Time: now})
	}
	if err := s.Apply(ctx, tx); err == nil || errors.Is(err, keys.ErrConflict) || s.Writes() != 0 {
		t.Errorf("Apply of 101 items: %v, Writes %d", err, s.Writes())
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetKey(done, "key_000000000000000000000001"); !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("GetKey on a cancelled context: %v, want ErrUnavailable", err)
	}
}
