{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "drainer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, prefixed to the chart name unless it already contains it.
*/}}
{{- define "drainer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "drainer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "drainer.labels" -}}
helm.sh/chart: {{ include "drainer.chart" . }}
{{ include "drainer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: drainer
{{- end }}

{{/*
Selector labels (immutable on a Deployment: keep them minimal).
*/}}
{{- define "drainer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drainer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drainer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "drainer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "drainer.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Name of the Secret holding the database password and admin token, or "" when
there is none (no existing Secret and nothing to put in a chart-created one).
*/}}
{{- define "drainer.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if or .Values.secrets.databasePassword .Values.secrets.adminToken .Values.secrets.operatorToken .Values.secrets.redisPassword }}
{{- include "drainer.fullname" . }}
{{- end }}
{{- end }}

{{/*
"true" when the pod gets a Redis password (DRAINER__REDIS__PASSWORD from the Secret).
*/}}
{{- define "drainer.redisAuth" -}}
{{- if or .Values.redis.auth (and (not .Values.secrets.existingSecret) .Values.secrets.redisPassword) -}}
true
{{- end -}}
{{- end }}

{{/*
terminationGracePeriodSeconds: the app's shutdown deadline rounded up plus a
margin, so the kubelet never kills a pod that is still acknowledging its
in-flight batches.
*/}}
{{- define "drainer.terminationGracePeriodSeconds" -}}
{{- add (ceil .Values.drainer.shutdownTimeoutS | int) (int .Values.terminationGraceMarginS) }}
{{- end }}

{{/*
The TOML settings as a dict (rendered with toJson; read back with fromJson).
Keys whose value is null are left out of the file.
*/}}
{{- define "drainer.settings" -}}
{{- $v := .Values -}}
{{- $d := $v.drainer -}}
{{- $drainer := dict
  "stream_name" $d.streamName
  "num_partitions" $d.numPartitions
  "max_read_count" $d.maxReadCount
  "loop_interval" $d.loopInterval
  "shutdown_interval" $d.shutdownInterval
  "consumer_group" $d.consumerGroup
  "claim_min_idle_ms" $d.claimMinIdleMs
  "max_attempts" $d.maxAttempts
  "max_concurrent_partitions" $d.maxConcurrentPartitions
  "shutdown_timeout_s" $d.shutdownTimeoutS
-}}
{{- $db := $v.masterDatabase -}}
{{- $database := dict
  "host" $db.host
  "port" $db.port
  "username" $db.username
  "dbname" $db.dbname
  "pool_size" $db.poolSize
  "connection_timeout" $db.connectionTimeout
-}}
{{- $redis := dict "cluster_enabled" (ternary true false (eq (toString $v.redis.clusterEnabled) "true")) -}}
{{- if $v.redis.url -}}
{{- $_ := set $redis "url" $v.redis.url -}}
{{- else -}}
{{- $_ := set $redis "host" $v.redis.host -}}
{{- $_ := set $redis "port" $v.redis.port -}}
{{- end -}}
{{- if and $v.redis.clusterEnabled $v.redis.clusterUrls -}}
{{- $_ := set $redis "cluster_urls" $v.redis.clusterUrls -}}
{{- end -}}
{{- if $v.redis.tlsEnabled -}}
{{- $_ := set $redis "tls_enabled" true -}}
{{- end -}}
{{- if $v.redis.username -}}
{{- $_ := set $redis "username" $v.redis.username -}}
{{- end -}}
{{- $tenants := dict -}}
{{- range $id, $t := $v.multitenancy.tenants -}}
{{- $_ := set $tenants $id (dict "schema" $t.schema "redis_key_prefix" (default "" $t.redisKeyPrefix)) -}}
{{- end -}}
{{- $multitenancy := dict "enabled" (ternary true false (eq (toString $v.multitenancy.enabled) "true")) -}}
{{- if $tenants -}}
{{- $_ := set $multitenancy "tenants" $tenants -}}
{{- end -}}
{{- $tables := dict "aliases" (default dict $v.tables.aliases) "keys" (default dict $v.tables.keys) "reflect" $v.tables.reflect -}}
{{- if $v.tables.modelsModule -}}
{{- $_ := set $tables "models_module" $v.tables.modelsModule -}}
{{- end -}}
{{- $telemetry := dict "log_level" $v.telemetry.logLevel "log_format" $v.telemetry.logFormat "service_name" $v.telemetry.serviceName -}}
{{- if $v.telemetry.otlpEndpoint -}}
{{- $_ := set $telemetry "otlp_endpoint" $v.telemetry.otlpEndpoint -}}
{{- end -}}
{{- $settings := dict
  "drainer" $drainer
  "master_database" $database
  "redis" $redis
  "server" (dict "port" $v.server.port)
  "multitenancy" $multitenancy
  "tables" $tables
  "telemetry" $telemetry
-}}
{{- $settings = mustMergeOverwrite $settings (deepCopy (default dict $v.extraConfig)) -}}
{{- toJson $settings -}}
{{- end }}

{{/*
TOML emitter. A key is bare when it can be, quoted otherwise; strings, numbers
and lists are written as JSON, which is valid TOML for them; maps become
[tables]; null values are skipped.
*/}}
{{- define "drainer.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}
{{- . -}}
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end }}

{{- define "drainer.toml.value" -}}
{{- if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else -}}
{{- if kindIs "slice" . -}}
{{- range . -}}
{{- if or (kindIs "map" .) (kindIs "slice" .) (kindIs "invalid" .) -}}
{{- fail "settings: lists may only hold strings, numbers and booleans" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson . -}}
{{- end -}}
{{- end }}

{{- define "drainer.toml.table" -}}
{{- $table := .table -}}
{{- $path := .path -}}
{{- $scalars := list -}}
{{- $subtables := list -}}
{{- range $k := keys $table | sortAlpha -}}
{{- $val := index $table $k -}}
{{- if kindIs "map" $val -}}
{{- $subtables = append $subtables $k -}}
{{- else if not (kindIs "invalid" $val) -}}
{{- $scalars = append $scalars (printf "%s = %s" (include "drainer.toml.key" $k) (include "drainer.toml.value" $val)) -}}
{{- end -}}
{{- end -}}
{{- if and $path (or $scalars (not $subtables)) }}

[{{ $path }}]
{{- end }}
{{- range $scalars }}
{{ . }}
{{- end }}
{{- range $k := $subtables }}
{{- $sub := include "drainer.toml.key" $k }}
{{- if $path }}{{ $sub = printf "%s.%s" $path $sub }}{{ end }}
{{- include "drainer.toml.table" (dict "path" $sub "table" (index $table $k)) }}
{{- end }}
{{- end }}

{{/*
Partition stream key prefixes KEDA watches: "" without multitenancy, else one
per distinct tenant redisKeyPrefix.
*/}}
{{- define "drainer.streamPrefixes" -}}
{{- $prefixes := list "" -}}
{{- if .Values.multitenancy.enabled -}}
{{- if not .Values.multitenancy.tenants -}}
{{- fail "multitenancy.enabled is true but multitenancy.tenants is empty" -}}
{{- end -}}
{{- $prefixes = list -}}
{{- range $id := keys .Values.multitenancy.tenants | sortAlpha -}}
{{- $prefixes = append $prefixes (default "" (index $.Values.multitenancy.tenants $id).redisKeyPrefix) -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $prefixes) -}}
{{- end }}

{{/*
All partition stream keys: <prefix>:{shard_N}_<streamName> (no colon without a prefix).
*/}}
{{- define "drainer.streamKeys" -}}
{{- $keys := list -}}
{{- $stream := .Values.drainer.streamName -}}
{{- range $prefix := include "drainer.streamPrefixes" . | fromJsonArray -}}
{{- $head := ternary (printf "%s:" $prefix) "" (ne $prefix "") -}}
{{- range $n := until (int $.Values.drainer.numPartitions) -}}
{{- $keys = append $keys (printf "%s{shard_%d}_%s" $head $n $stream) -}}
{{- end -}}
{{- end -}}
{{- toJson $keys -}}
{{- end }}

{{/*
host:port of a redis:// or rediss:// URL (default port 6379), or the input when
it has no scheme.
*/}}
{{- define "drainer.redisHostPort" -}}
{{- if contains "://" . -}}
{{- $u := urlParse . -}}
{{- if or (eq $u.host $u.hostname) (hasSuffix "]" $u.host) -}}
{{- printf "%s:6379" $u.host -}}
{{- else -}}
{{- $u.host -}}
{{- end -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end }}

{{/*
Address KEDA's Redis scalers connect to: `address` (single node) or
`addresses` (cluster, comma-separated).
*/}}
{{- define "drainer.keda.redisAddress" -}}
{{- $r := .Values.redis -}}
{{- if .Values.autoscaling.keda.redisAddress -}}
{{- .Values.autoscaling.keda.redisAddress -}}
{{- else if and $r.clusterEnabled $r.clusterUrls -}}
{{- $hosts := list -}}
{{- range $r.clusterUrls -}}
{{- $hosts = append $hosts (include "drainer.redisHostPort" .) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- else if $r.url -}}
{{- include "drainer.redisHostPort" $r.url -}}
{{- else -}}
{{- printf "%s:%v" $r.host $r.port -}}
{{- end -}}
{{- end }}

{{/*
"true" when KEDA should talk TLS to Redis.
*/}}
{{- define "drainer.keda.redisTLS" -}}
{{- $k := .Values.autoscaling.keda -}}
{{- if not (kindIs "invalid" $k.enableTLS) -}}
{{- ternary "true" "false" (eq (toString $k.enableTLS) "true") -}}
{{- else -}}
{{- $urls := .Values.redis.clusterUrls | default list -}}
{{- if .Values.redis.url }}{{ $urls = append $urls .Values.redis.url }}{{ end -}}
{{- $tls := eq (toString .Values.redis.tlsEnabled) "true" -}}
{{- range $urls }}{{ if hasPrefix "rediss://" . }}{{ $tls = true }}{{ end }}{{ end -}}
{{- ternary "true" "false" $tls -}}
{{- end -}}
{{- end }}

{{/*
Database index from redis.url's path (single node only), "" when 0 or absent.
*/}}
{{- define "drainer.keda.redisDatabaseIndex" -}}
{{- if and .Values.redis.url (not .Values.redis.clusterEnabled) (contains "://" .Values.redis.url) -}}
{{- $db := (urlParse .Values.redis.url).path | trimPrefix "/" -}}
{{- if and $db (ne $db "0") -}}{{ $db }}{{- end -}}
{{- end -}}
{{- end }}

{{/*
KEDA streamLength per partition stream: explicit, or the per-replica target
spread over all streams (at least 1).
*/}}
{{- define "drainer.keda.streamLength" -}}
{{- $a := .Values.autoscaling -}}
{{- if not (kindIs "invalid" $a.keda.streamLength) -}}
{{- int $a.keda.streamLength -}}
{{- else -}}
{{- $streams := len (include "drainer.streamKeys" . | fromJsonArray) -}}
{{- max 1 (ceil (divf $a.targetBacklogPerReplica $streams) | int) -}}
{{- end -}}
{{- end }}

{{/*
Checks across values the schema cannot express.
*/}}
{{- define "drainer.validate" -}}
{{- $_ := include "drainer.streamPrefixes" . -}}
{{- if .Values.autoscaling.enabled -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail (printf "autoscaling.minReplicas (%v) must not exceed autoscaling.maxReplicas (%v)" .Values.autoscaling.minReplicas .Values.autoscaling.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.redis.clusterEnabled (not .Values.redis.clusterUrls) (not .Values.redis.url) -}}
{{- fail "redis.clusterEnabled needs redis.clusterUrls (or a seed node in redis.url)" -}}
{{- end -}}
{{- if and .Values.redis.auth (not .Values.secrets.existingSecret) (not .Values.secrets.redisPassword) -}}
{{- fail "redis.auth needs secrets.existingSecret (with key secrets.redisPasswordKey) or secrets.redisPassword" -}}
{{- end -}}
{{- if and .Values.redis.username (not (include "drainer.redisAuth" .)) -}}
{{- fail "redis.username needs a Redis password: set redis.auth (existing Secret) or secrets.redisPassword" -}}
{{- end -}}
{{- if .Values.multitenancy.enabled -}}
{{- $schemas := dict -}}
{{- $prefixes := dict -}}
{{- range $id := keys .Values.multitenancy.tenants | sortAlpha -}}
{{- $t := index $.Values.multitenancy.tenants $id -}}
{{- $prefix := default "" $t.redisKeyPrefix -}}
{{- if hasKey $schemas $t.schema -}}
{{- fail (printf "multitenancy.tenants: tenants %s and %s share schema %q" (get $schemas $t.schema) $id $t.schema) -}}
{{- end -}}
{{- if hasKey $prefixes $prefix -}}
{{- fail (printf "multitenancy.tenants: tenants %s and %s share redisKeyPrefix %q" (get $prefixes $prefix) $id $prefix) -}}
{{- end -}}
{{- $_ := set $schemas $t.schema $id -}}
{{- $_ := set $prefixes $prefix $id -}}
{{- end -}}
{{- end -}}
{{- end }}
