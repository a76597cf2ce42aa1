{{/* The release's name prefix: "pyairtable" for a release named pyairtable. */}}
{{- define "pyairtable.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "pyairtable.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pods of one component: (dict "root" $ "component" "router|subgraph|migrate" "subgraph" NAME). */}}
{{- define "pyairtable.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .subgraph }}
pyairtable.io/subgraph: {{ . }}
{{- end }}
{{- end -}}

{{- define "pyairtable.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Non-root, no privilege escalation, read-only root, no capabilities. */}}
{{- define "pyairtable.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "pyairtable.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Environment of every PyAirtable container: the ConfigMap, then the Secret. */}}
{{- define "pyairtable.envFrom" -}}
- configMapRef:
    name: {{ include "pyairtable.fullname" . }}-config
- secretRef:
    name: {{ .Values.existingSecret }}
{{- end -}}

{{/* The HTTP service's port, probes and shutdown. */}}
{{- define "pyairtable.serving" -}}
ports:
  - name: http
    containerPort: 4000
    protocol: TCP
startupProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 10
  timeoutSeconds: 3
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.preStopSeconds }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{/* A Deployment's pod spec tail. */}}
{{- define "pyairtable.podTail" -}}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
automountServiceAccountToken: false
securityContext:
  {{- include "pyairtable.podSecurityContext" . | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end -}}

{{/* name=url of every subgraph, for the router (overrides the supergraph file's URLs). */}}
{{- define "pyairtable.subgraphUrls" -}}
{{- $fullname := include "pyairtable.fullname" . -}}
{{- $pairs := list -}}
{{- range .Values.subgraphs -}}
{{- $pairs = append $pairs (printf "%s=http://%s-%s:4000/graphql" .name $fullname .name) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The files subgraph's object store: an S3 bucket, or the chart refuses to render (see values.yaml). */}}
{{- define "pyairtable.filesEnv" -}}
{{- $url := .Values.files.objectStoreUrl | default "" | toString -}}
{{- if not (hasPrefix "s3://" $url) -}}
{{- fail (printf "files.objectStoreUrl must be an S3 bucket, s3://BUCKET[/prefix] (got %q): the files pods (2+ replicas) cannot share a local folder, and clients reach file bytes only through S3's presigned URLs (the files service's own /files/* endpoints are behind the NetworkPolicy). Set files.objectStoreUrl and put AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the Secret." $url) -}}
{{- end -}}
{{- if hasKey .Values.config "PYAIRTABLE_OBJECT_STORE_URL" -}}
{{- fail "set files.objectStoreUrl, not config.PYAIRTABLE_OBJECT_STORE_URL" -}}
{{- end -}}
- name: PYAIRTABLE_OBJECT_STORE_URL
  value: {{ $url | quote }}
{{- range $name, $value := .Values.files.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
