package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
)

func clusterCommands() []command {
	return []command{
		{group: "cluster", name: "status", summary: "show brokers, the controller (metadata leader), partition leaders, and the admin endpoint's cluster view", setup: setupClusterStatus},
		{group: "cluster", name: "add-broker", summary: "add a broker to the cluster (admin endpoint)", setup: setupAddBroker},
		{group: "cluster", name: "remove-broker", summary: "remove a broker from the cluster (admin endpoint)", setup: setupRemoveBroker},
	}
}

// clusterStatus is cluster status's JSON.
type clusterStatus struct {
	ClusterID  string          `json:"cluster_id"`
	Controller int32           `json:"controller"`
	Brokers    []brokerInfo    `json:"brokers"`
	Partitions []partitionInfo `json:"partitions"`
	// Admin is GET /admin/cluster's answer as it came, absent when no
	// admin URL is known or the endpoint does not exist.
	Admin json.RawMessage `json:"admin_cluster,omitempty"`
}

// brokerInfo is one broker of cluster status.
type brokerInfo struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// Leaders counts the partitions the broker leads.
	Leaders int `json:"leaders"`
}

func setupClusterStatus(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		adm, err := c.kafka()
		if err != nil {
			return err
		}
		md, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		st := clusterStatus{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []brokerInfo{}, Partitions: []partitionInfo{}}
		leads := map[int32]int{}
		for _, td := range md.Topics.Sorted() {
			for _, p := range partitionsOf(td) {
				p.Topic = td.Topic
				st.Partitions = append(st.Partitions, p)
				leads[p.Leader]++
			}
		}
		for _, b := range md.Brokers {
			st.Brokers = append(st.Brokers, brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack), Leaders: leads[b.NodeID]})
		}
		slices.SortFunc(st.Brokers, func(a, b brokerInfo) int { return cmp.Compare(a.ID, b.ID) })
		var adminErr error
		st.Admin, adminErr = c.adminCluster(ctx)
		if err := c.emit(st, func(w io.Writer) { writeClusterStatus(w, st, first(c.admin...)) }); err != nil {
			return err
		}
		return adminErr
	}
}

// adminCluster returns GET /admin/cluster's JSON: nil without an admin
// URL, and nil with a note on stderr when the broker does not serve it.
func (c *cli) adminCluster(ctx context.Context) (json.RawMessage, error) {
	if len(c.admin) == 0 {
		return nil, nil
	}
	data, err := c.adminCall(ctx, http.MethodGet, c.admin[0], "/admin/cluster", nil)
	switch {
	case isStatus(err, http.StatusNotFound):
		fmt.Fprintf(c.stderr, "shoalctl: %s/admin/cluster is not served by this broker (404); showing the Kafka protocol's view only\n", c.admin[0])
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("GET %s/admin/cluster: %w", c.admin[0], err)
	case !json.Valid(data):
		return nil, fmt.Errorf("GET %s/admin/cluster: the answer is not JSON", c.admin[0])
	}
	return json.RawMessage(bytes.TrimSpace(data)), nil
}

func writeClusterStatus(w io.Writer, st clusterStatus, admin string) {
	writeFields(w, "Cluster", first(st.ClusterID, "-"), "Controller", strconv.Itoa(int(st.Controller))+" (metadata leader)")
	fmt.Fprintln(w)
	rows := make([][]string, len(st.Brokers))
	for i, b := range st.Brokers {
		rows[i] = []string{strconv.Itoa(int(b.ID)), net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), first(b.Rack, "-"), strconv.Itoa(b.Leaders)}
	}
	writeTable(w, []string{"BROKER", "ADDRESS", "RACK", "LEADERS"}, rows)
	if len(st.Partitions) > 0 {
		fmt.Fprintln(w)
		writePartitions(w, st.Partitions)
	}
	if st.Admin != nil {
		fmt.Fprintf(w, "\nAdmin view (%s/admin/cluster):\n", admin)
		if err := renderJSON(w, st.Admin); err != nil {
			fmt.Fprintf(w, "%s\n", st.Admin)
		}
	}
}

// addBrokerRequest is the body of POST /admin/cluster/brokers.
type addBrokerRequest struct {
	ID             int32  `json:"id"`
	ClusterAddress string `json:"cluster_address"`
}

func setupAddBroker(fs *flag.FlagSet) runFunc {
	id := fs.Int("id", -1, "the new broker's node `id` (required)")
	addr := fs.String("cluster-address", "", "the new broker's cluster (Raft) listener, `host:port` (required)")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) > 0:
			return c.usagef("takes no arguments")
		case *id < 0 || *id > 1<<31-1:
			return c.usagef("--id N is required (a node id, 0 or more)")
		case *addr == "":
			return c.usagef("--cluster-address host:port is required")
		}
		if _, _, err := net.SplitHostPort(*addr); err != nil {
			return c.usagef("--cluster-address: %v", err)
		}
		base, err := c.needAdmin()
		if err != nil {
			return err
		}
		c.progress("adding broker %d (%s)...", *id, *addr)
		data, err := c.adminCall(ctx, http.MethodPost, base, "/admin/cluster/brokers", addBrokerRequest{ID: int32(*id), ClusterAddress: *addr})
		if err != nil {
			return fmt.Errorf("add broker %d: %w", *id, err)
		}
		return c.emitAdminAnswer(data, fmt.Sprintf("added broker %d (cluster address %s)", *id, *addr))
	}
}

func setupRemoveBroker(fs *flag.FlagSet) runFunc {
	id := fs.Int("id", -1, "the node `id` of the broker to remove (required)")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) > 0:
			return c.usagef("takes no arguments")
		case *id < 0 || *id > 1<<31-1:
			return c.usagef("--id N is required (a node id, 0 or more)")
		}
		base, err := c.needAdmin()
		if err != nil {
			return err
		}
		c.progress("removing broker %d...", *id)
		data, err := c.adminCall(ctx, http.MethodDelete, base, "/admin/cluster/brokers/"+strconv.Itoa(*id), nil)
		if err != nil {
			return fmt.Errorf("remove broker %d: %w", *id, err)
		}
		return c.emitAdminAnswer(data, fmt.Sprintf("removed broker %d", *id))
	}
}

// emitAdminAnswer prints a successful admin answer: the JSON as it came
// (indented) with --output json, else the confirmation line and the
// answer's fields.
func (c *cli) emitAdminAnswer(data []byte, confirmation string) error {
	data = bytes.TrimSpace(data)
	if c.output == "json" {
		if len(data) == 0 || !json.Valid(data) {
			return writeJSON(c.stdout, map[string]string{"result": confirmation})
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, data, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	fmt.Fprintln(c.stdout, confirmation)
	if len(data) > 0 && json.Valid(data) && !bytes.Equal(data, []byte("{}")) {
		return renderJSON(c.stdout, data)
	}
	return nil
}
