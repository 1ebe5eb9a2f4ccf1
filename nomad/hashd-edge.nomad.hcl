# hashd-edge: the load balancer and the Prometheus in front of the hashd job, both fed from
# Nomad's own service catalogue (native service discovery, no Consul).
#
#   nomad var put nomad/jobs/hashd-edge tls_pem=@edge.pem backend_ca=@hashd-ca.crt
#   nomad job run -var 'backend_name=hashd.example.org' nomad/hashd-edge.nomad.hcl
#
# - HAProxy (Debian's haproxy) terminates the clients' TLS and re-encrypts to the hashd
#   allocations registered as "hashd-api", checking the backend certificate against
#   backend_ca and backend_name. Its server list is a template over `nomadService
#   "hashd-api"`: Nomad re-renders it when allocations come and go and HAProxy reloads
#   (SIGUSR2, hitless in master-worker mode). HAProxy's own /readyz checks take a draining
#   or store-less unit out before Nomad's catalogue notices. It replaces a client's
#   X-Forwarded-For with the client's address; the hashd job believes it from these nodes
#   only (its trusted_proxies variable).
# - Prometheus (Debian's prometheus, built without nomad_sd_configs) discovers the
#   "hashd-metrics" registrations through file_sd_configs: a template renders Nomad's
#   catalogue into a file_sd JSON file with the very labels nomad_sd_configs would give
#   (__meta_nomad_*), so nomad/prometheus-nomad-sd.yml (for a Prometheus built with Nomad
#   discovery) and this configuration share one relabelling, and the Nomad Autoscaler's query
#   in hashd.nomad.hcl works against either.
#
# Driver exec, as in hashd.nomad.hcl: Debian's binaries from the node, in a chroot, as nobody
# (the static ports below are above 1024 for that reason; put 443/80 on the node's firewall
# or a cloud load balancer in front).

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "https_port" {
  type        = number
  description = "Port the clients' HTTPS arrives on."
  default     = 8443
}

variable "http_port" {
  type        = number
  description = "Plain HTTP port: 301 to HTTPS."
  default     = 8080
}

variable "prometheus_port" {
  type    = number
  default = 9090
}

variable "backend_name" {
  type        = string
  description = "The name in the hashd allocations' certificate, verified on every backend connection."
  default     = "localhost"
}

job "hashd-edge" {
  type        = "service"
  datacenters = var.datacenters

  group "edge" {
    count = 1

    network {
      port "https" {
        static = var.https_port
      }
      port "http" {
        static = var.http_port
      }
      port "prometheus" {
        static = var.prometheus_port
      }
    }

    service {
      provider = "nomad"
      name     = "hashd-edge"
      port     = "https"

      check {
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      provider = "nomad"
      name     = "hashd-prometheus"
      port     = "prometheus"

      check {
        type     = "http"
        path     = "/-/ready"
        interval = "10s"
        timeout  = "2s"
      }
    }

    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "2m"
      auto_revert      = true
    }

    restart {
      attempts = 10
      interval = "1m"
      delay    = "1s"
      mode     = "delay"
    }

    # Prometheus's TSDB: keep it across updates on the same node.
    ephemeral_disk {
      size    = 2048
      sticky  = true
      migrate = true
    }

    task "haproxy" {
      driver = "exec"

      config {
        command = "/usr/sbin/haproxy"
        # -W: master-worker (SIGUSR2 reloads without dropping connections); -db: foreground.
        args = ["-W", "-db", "-f", "${NOMAD_TASK_DIR}/haproxy.cfg"]
      }

      env {
        BACKEND_NAME = "${var.backend_name}"
      }

      # Certificate and key for the clients (one PEM), and the CA of the hashd allocations'
      # certificate, from a Nomad Variable.
      template {
        destination   = "secrets/edge.pem"
        perms         = "0600"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = "{{ with nomadVar \"nomad/jobs/hashd-edge\" }}{{ .tls_pem }}{{ end }}"
      }

      template {
        destination   = "secrets/backend-ca.crt"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = "{{ with nomadVar \"nomad/jobs/hashd-edge\" }}{{ .backend_ca }}{{ end }}"
      }

      template {
        destination   = "local/haproxy.cfg"
        change_mode   = "signal"
        change_signal = "SIGUSR2"
        data          = <<EOT
# HAProxy in front of the hashd job (rendered by Nomad from its service catalogue).
global
    log stdout format raw local0 info
    # Mozilla intermediate, as nginx/hashd/snippets/tls.conf.
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    # Longer than nginx's fastcgi_read_timeout (10 s), so nginx answers a slow request first.
    timeout server 15s
    timeout http-request 10s
    # A unit that died or refused: try another one. Only requests HAProxy still holds whole
    # are replayed (hashing and message writes are idempotent, docs/persistence.md).
    retries 2
    option redispatch
    retry-on conn-failure empty-response 503

frontend https
    bind {{ env "NOMAD_IP_https" }}:{{ env "NOMAD_PORT_https" }} ssl crt {{ env "NOMAD_SECRETS_DIR" }}/edge.pem alpn h2,http/1.1
    # The client's address, never a header the client sent: nginx believes this one from
    # the edge nodes only.
    http-request del-header X-Forwarded-For
    option forwardfor
    default_backend hashd

frontend http
    bind {{ env "NOMAD_IP_http" }}:{{ env "NOMAD_PORT_http" }}
    http-request redirect scheme https code 301

backend hashd
    # Requests differ a thousandfold in cost (cost-14 hash vs message read): fewest in flight.
    balance leastconn
    # Readiness, not liveness: a draining or store-less unit leaves the rotation.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host {{ env "BACKEND_NAME" }}
    http-check expect status 200
    default-server check inter 2s fall 3 rise 2 ssl verify required ca-file {{ env "NOMAD_SECRETS_DIR" }}/backend-ca.crt verifyhost {{ env "BACKEND_NAME" }} sni str({{ env "BACKEND_NAME" }}) alpn http/1.1
{{ range nomadService "hashd-api" }}    server {{ .AllocID }} {{ .Address }}:{{ .Port }}
{{ end }}
EOT
      }

      # SIGUSR1: soft stop, finishing the requests in flight.
      kill_signal  = "SIGUSR1"
      kill_timeout = "20s"

      resources {
        cpu    = 500
        memory = 64
      }
    }

    task "prometheus" {
      driver = "exec"

      config {
        command = "/usr/bin/prometheus"
        args = [
          "--config.file=${NOMAD_TASK_DIR}/prometheus.yml",
          "--storage.tsdb.path=${NOMAD_ALLOC_DIR}/data/prometheus",
          "--storage.tsdb.retention.time=15d",
          "--web.listen-address=${NOMAD_ADDR_prometheus}",
        ]
      }

      # The "hashd-metrics" registrations as file_sd targets with Nomad discovery's labels.
      # Prometheus re-reads the file when it changes: no signal needed.
      template {
        destination = "local/hashd-targets.json"
        change_mode = "noop"
        data        = <<EOT
[{{ range $i, $s := nomadService "hashd-metrics" }}{{ if $i }},{{ end }}
  {"targets": ["{{ .Address }}:{{ .Port }}"],
   "labels": {"__meta_nomad_address": "{{ .Address }}", "__meta_nomad_dc": "{{ .Datacenter }}",
              "__meta_nomad_namespace": "{{ .Namespace }}", "__meta_nomad_node_id": "{{ .NodeID }}",
              "__meta_nomad_service": "{{ .Name }}", "__meta_nomad_service_address": "{{ .Address }}",
              "__meta_nomad_service_alloc_id": "{{ .AllocID }}", "__meta_nomad_service_id": "{{ .ID }}",
              "__meta_nomad_service_job_id": "{{ .JobID }}", "__meta_nomad_service_port": "{{ .Port }}",
              "__meta_nomad_tags": ",{{ .Tags | join "," }},"}}{{ end }}
]
EOT
      }

      # Everything but the discovery block is nomad/prometheus-nomad-sd.yml's (make nomad-test
      # compares them).
      template {
        destination   = "local/prometheus.yml"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<EOT
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  # The pool metrics of every hashd allocation (the status port's /metrics).
  - job_name: hashd
    scrape_interval: 10s
    metrics_path: /metrics
    file_sd_configs:
      - files: ['{{ env "NOMAD_TASK_DIR" }}/hashd-targets.json']
    relabel_configs:
      - source_labels: [__meta_nomad_service]
        regex: hashd-metrics
        action: keep
      # The labels the Autoscaler's query and the alerts group by.
      - source_labels: [__meta_nomad_service_job_id]
        target_label: nomad_job
      - source_labels: [__meta_nomad_service_alloc_id]
        target_label: nomad_alloc_id
      - source_labels: [__meta_nomad_node_id]
        target_label: nomad_node_id
      - source_labels: [__meta_nomad_dc]
        target_label: nomad_dc
EOT
      }

      resources {
        cpu        = 500
        memory     = 256
        memory_max = 512
      }
    }
  }
}
