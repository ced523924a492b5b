package analyzer

import (
	"encoding/json"
	"testing"

	"github.com/cordstream/cordstream/internal/window"
)

// A share's records: the partial counts of input partition p go to
// repartition partition p mod S, tagged with the batch, and the marker of
// each partition the plan read comes after them (the leader reads a share
// up to its marker); the first marker carries the share's late records.
func TestShareRecordsEndWithMarkers(t *testing.T) {
	cfg := durableQuery()
	d := newDurableState(newFakeDurable(newMemCluster(4, 3), 0), cfg)
	d.role, d.batch = RoleMap, 7
	keys := []window.Value{{S: "alice", Valid: true}}
	d.addPartial(3, 2, testBase, keys) // shuffle partition 2 is ignored: 3 mod 3 = 0
	d.addPartial(3, 1, testBase+1000, keys)
	d.addPartial(1, 0, testBase, keys)
	eng, err := window.New(cfg.engineConfig())
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{Role: RoleMap, Batch: 7, Ranges: []Range{{Topic: "in", Partition: 1, From: 0, To: 5}, {Topic: "in", Partition: 3, From: 2, To: 9}}}
	recs, err := d.records(eng, plan, 4, 12)
	if err != nil {
		t.Fatal(err)
	}
	last := map[int32]string{} // repartition partition -> kind of its last record
	partials := map[int32]int64{}
	markers := map[int32]marker{}
	for _, r := range recs {
		if r.Topic != Repartition {
			continue
		}
		if string(r.Key) == keyMarker {
			m, err := decodeMarker(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if r.Partition != m.Partition%3 {
				t.Errorf("marker of input partition %d in repartition partition %d", m.Partition, r.Partition)
			}
			markers[m.Partition] = m
			last[r.Partition] = "marker"
			continue
		}
		if last[r.Partition] == "marker" {
			t.Errorf("a partial count after the marker in repartition partition %d", r.Partition)
		}
		p, err := decodePartial(r.Value, 1)
		if err != nil {
			t.Fatal(err)
		}
		if p.Batch == nil || *p.Batch != 7 {
			t.Errorf("partial count %s: want batch 7", r.Value)
		}
		partials[r.Partition] += p.Count
		last[r.Partition] = "partial"
	}
	if partials[0] != 2 || partials[1] != 1 || len(partials) != 2 {
		t.Errorf("partial counts by repartition partition: %v, want map[0:2 1:1]", partials)
	}
	if len(markers) != 2 || markers[1].Batch != 7 || markers[3].Batch != 7 {
		t.Errorf("markers: %+v, want batch 7 for input partitions 1 and 3", markers)
	}
	if markers[1].Late+markers[3].Late != 4 || markers[1].Records+markers[3].Records != 12 {
		t.Errorf("markers: %+v, want 4 late records and 12 records in all", markers)
	}
}

func TestPlanRecords(t *testing.T) {
	v, _ := json.Marshal(batchPlanValue{Batch: 3, Leader: "a", Ranges: []planRange{{0, 5, 9}, {1, 2, 2}}})
	p, err := decodePlan(v)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := p.rangeOf(0); !ok || r.To != 9 {
		t.Errorf("range of partition 0: %+v %v", r, ok)
	}
	if _, ok := p.rangeOf(2); ok {
		t.Error("a range for a partition the plan does not have")
	}
	for _, bad := range []string{`{"batch":-1}`, `{"batch":1,"ranges":[{"partition":0,"from":5,"to":4}]}`, `[`} {
		if _, err := decodePlan([]byte(bad)); err == nil {
			t.Errorf("plan %s: no error", bad)
		}
	}
	if _, err := decodeMarker([]byte(`{"batch":1,"partition":-2}`)); err == nil {
		t.Error("a marker of partition -2: no error")
	}
	st := PartitionState{keyBatch: []byte("12"), "h": []byte("{}")}
	if b, err := parseBatch(st, "p"); err != nil || b != 12 || st[keyBatch] != nil {
		t.Errorf("parseBatch: %d %v, the record kept: %v", b, err, st[keyBatch] != nil)
	}
	if b, err := parseBatch(PartitionState{}, "p"); err != nil || b != -1 {
		t.Errorf("parseBatch without a record: %d %v, want -1", b, err)
	}
	if _, err := parseBatch(PartitionState{keyBatch: []byte("x")}, "p"); err == nil {
		t.Error("parseBatch of a malformed record: no error")
	}
	if mappedOf(map[int32]int64{}, 4) != -1 {
		t.Error("mappedOf an unknown partition: want -1")
	}
	next, err := nextBatchOf(map[int32]PartitionState{0: {keyProgress: []byte(`{"next_batch_id":4}`)}, 1: {keyProgress: []byte(`{"next_batch_id":6}`)}, 2: {}})
	if err != nil || next != 6 {
		t.Errorf("nextBatchOf: %d %v, want 6", next, err)
	}
}
