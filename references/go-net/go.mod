module c1m/references/go-net

go 1.19
