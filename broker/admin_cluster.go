package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-io/shoal/metadata"
)

// The cluster admin endpoints, on the metrics listener:
//
//	GET    /admin/cluster               the members, the metadata group and every WAL group (ClusterView)
//	POST   /admin/cluster/brokers       admit a broker: {"id": N, "cluster_address": "HOST:PORT"}
//	DELETE /admin/cluster/brokers/{id}  remove a broker for good
//
// Errors answer {"error": "..."} with 400 (bad request), 404 (unknown
// broker), 409 (the change conflicts with the cluster: an id in use or
// removed, the last replica of a group) or 503 (no metadata leader).
// shoalctl cluster status|add-broker|remove-broker speak them.

// adminWriteTimeout bounds a membership change requested over HTTP.
const adminWriteTimeout = 15 * time.Second

// ClusterView is the admin view of the cluster.
type ClusterView struct {
	ClusterID string            `json:"cluster_id"`
	NodeID    int32             `json:"node_id"` // the broker that answered
	Metadata  MetadataGroupView `json:"metadata"`
	Members   []MemberView      `json:"members"`
	Removed   []int32           `json:"removed,omitempty"`
	WALGroups []WALGroupView    `json:"wal_groups"`
}

// MetadataGroupView is the metadata Raft group as the answering broker sees it.
type MetadataGroupView struct {
	Leader    int32   `json:"leader"` // -1: none known
	Voters    []int32 `json:"voters"`
	NonVoters []int32 `json:"non_voters"`
	Index     uint64  `json:"applied_index"`
}

// MemberView is one member broker.
type MemberView struct {
	ID          int32  `json:"id"`
	ClusterAddr string `json:"cluster_address"`
	Kafka       string `json:"kafka,omitempty"` // registered Kafka address, host:port
	Rack        string `json:"rack,omitempty"`
}

// WALGroupView is one WAL group: its layout, and where the answering broker
// is a replica, its Raft state there.
type WALGroupView struct {
	ID          uint32  `json:"id"`
	Replicas    []int32 `json:"replicas"` // preferred leader first
	Leader      int32   `json:"leader"`   // -1: none known
	LeaderEpoch int32   `json:"leader_epoch"`
	Partitions  int     `json:"partitions"`
	// Local is set when the answering broker replicates the group.
	Local *LocalGroupView `json:"local,omitempty"`
}

// LocalGroupView is a WAL group's Raft state on the answering broker.
type LocalGroupView struct {
	State        string  `json:"state"` // Leader, Follower, Candidate
	Term         uint64  `json:"term"`
	Voters       []int32 `json:"voters"`
	InSync       []int32 `json:"in_sync"`
	LastIndex    uint64  `json:"last_index"`
	AppliedIndex uint64  `json:"applied_index"`
	PendingBytes int64   `json:"pending_upload_bytes"` // WAL data not yet in object storage
}

// ClusterView returns the current admin view of the cluster.
func (b *Broker) ClusterView() ClusterView {
	im := b.meta.Image()
	v := ClusterView{ClusterID: im.ClusterID, NodeID: b.cfg.NodeID, Removed: im.RemovedMembers}
	v.Metadata = MetadataGroupView{Leader: nodeID(b.meta.LeaderID()), Index: im.Index}
	if servers, err := b.meta.Servers(); err == nil {
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				v.Metadata.Voters = append(v.Metadata.Voters, nodeID(string(s.ID)))
			} else {
				v.Metadata.NonVoters = append(v.Metadata.NonVoters, nodeID(string(s.ID)))
			}
		}
	}
	for _, m := range im.SortedMembers() {
		mv := MemberView{ID: m.ID, ClusterAddr: m.ClusterAddr}
		if br, ok := im.Brokers[m.ID]; ok {
			mv.Kafka, mv.Rack = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), br.Rack
		}
		v.Members = append(v.Members, mv)
	}
	parts := map[uint32]int{}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			parts[p.WALGroup]++
		}
	}
	for _, g := range im.WALGroups {
		gv := WALGroupView{ID: g.ID, Replicas: g.Replicas, Leader: g.Leader, LeaderEpoch: g.LeaderEpoch, Partitions: parts[g.ID]}
		if ws := b.localGroup(g.ID); ws != nil {
			r := ws.g.Raft()
			voters := ws.voters()
			gv.Local = &LocalGroupView{
				State: r.State().String(), Term: r.CurrentTerm(), Voters: voters, InSync: ws.inSync(voters),
				LastIndex: r.LastIndex(), AppliedIndex: r.AppliedIndex(), PendingBytes: ws.g.PendingBytes(),
			}
			if l := nodeID(ws.g.Leader()); l >= 0 {
				gv.Leader, gv.LeaderEpoch = l, ws.g.LeaderEpoch()
			}
		}
		v.WALGroups = append(v.WALGroups, gv)
	}
	return v
}

// registerClusterAdmin adds the cluster admin endpoints to mux.
func (b *Broker) registerClusterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/cluster", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			writeAdminError(w, http.StatusServiceUnavailable, errors.New("broker not ready"))
			return
		}
		writeAdminJSON(w, http.StatusOK, b.ClusterView())
	})
	mux.HandleFunc("POST /admin/cluster/brokers", b.serveAddBroker)
	mux.HandleFunc("DELETE /admin/cluster/brokers/{id}", b.serveRemoveBroker)
}

// addBrokerRequest is the body of POST /admin/cluster/brokers.
type addBrokerRequest struct {
	ID             *int32 `json:"id"`
	ClusterAddress string `json:"cluster_address"`
}

func (b *Broker) serveAddBroker(w http.ResponseWriter, r *http.Request) {
	var req addBrokerRequest
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		writeAdminError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if req.ID == nil || *req.ID < 0 {
		writeAdminError(w, http.StatusBadRequest, errors.New(`"id" must be a broker id >= 0`))
		return
	}
	if err := checkHostPort("cluster_address", req.ClusterAddress, false); err != nil {
		writeAdminError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminWriteTimeout)
	defer cancel()
	m := metadata.Member{ID: *req.ID, ClusterAddr: req.ClusterAddress}
	if err := b.meta.AddMember(ctx, m, groupReplicas); err != nil {
		writeAdminError(w, adminStatus(err), fmt.Errorf("add broker %d: %w", m.ID, err))
		return
	}
	b.logger.Info("broker admitted to the cluster", "broker", m.ID, "cluster_address", m.ClusterAddr)
	writeAdminJSON(w, http.StatusOK, b.ClusterView())
}

func (b *Broker) serveRemoveBroker(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil || id < 0 {
		writeAdminError(w, http.StatusBadRequest, fmt.Errorf("broker id %q", r.PathValue("id")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminWriteTimeout)
	defer cancel()
	if err := b.meta.RemoveMember(ctx, int32(id)); err != nil {
		writeAdminError(w, adminStatus(err), fmt.Errorf("remove broker %d: %w", id, err))
		return
	}
	b.logger.Info("broker removed from the cluster", "broker", id)
	writeAdminJSON(w, http.StatusOK, b.ClusterView())
}

// adminStatus is the HTTP status of a failed membership change.
func adminStatus(err error) int {
	switch {
	case errors.Is(err, metadata.ErrUnknownMember):
		return http.StatusNotFound
	case errors.Is(err, metadata.ErrMemberExists), errors.Is(err, metadata.ErrMemberRemoved),
		errors.Is(err, metadata.ErrInvalidRequest):
		return http.StatusConflict
	case errors.Is(err, metadata.ErrNotLeader), errors.Is(err, metadata.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

func writeAdminError(w http.ResponseWriter, status int, err error) {
	writeAdminJSON(w, status, map[string]string{"error": err.Error()})
}
