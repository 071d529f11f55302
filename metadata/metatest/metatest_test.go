package metatest

import (
	"testing"

	"github.com/shoal-io/shoal/metadata"
)

func TestOpen(t *testing.T) {
	s := Open(t)
	if s.Image().ClusterID == "" || !s.IsLeader() {
		t.Fatalf("store not ready: cluster id %q, leader %v", s.Image().ClusterID, s.IsLeader())
	}
	top, err := s.CreateTopic(t.Context(), metadata.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1})
	if err != nil || len(top.Partitions) != 2 {
		t.Fatalf("create: %+v, %v", top, err)
	}
}
