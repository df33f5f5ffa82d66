//! `EtcdDcs`: the cluster's keys in etcd v3. (Being written.)
