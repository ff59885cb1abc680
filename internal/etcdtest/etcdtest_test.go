package etcdtest

import (
	"context"
	"testing"
	"time"
)

func TestStartAndRestartKeepData(t *testing.T) {
	cli, e := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	Restart(t, e, 0)
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}

func TestParallelServersAreIndependent(t *testing.T) {
	a, _ := Start(t)
	b, _ := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Put(ctx, "only-in-a", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := b.Get(ctx, "only-in-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatal("two Start calls share a server")
	}
}
