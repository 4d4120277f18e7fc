{{/* The pod template, shared by the Deployment and (when sharded) the StatefulSet. */}}
{{- define "scribe-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "scribe-exporter.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "scribe-exporter.configChecksum" . }}
    checksum/secret: {{ include "scribe-exporter.secretChecksum" . }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "scribe-exporter.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: exporter
      image: {{ include "scribe-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- if .Values.demo }}
        - --demo
        {{- else }}
        - --config.file=/etc/scribe-exporter/config/config.yaml
        {{- end }}
        - --web.listen-address=:9877
        - --log.level={{ .Values.logLevel }}
        - --log.format={{ .Values.logFormat }}
        {{- if .Values.sharding.enabled }}
        - --shard.count={{ .Values.sharding.count }}
        {{- end }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if .Values.sharding.enabled }}
      env:
        # The StatefulSet ordinal at the end of the pod name is this replica's shard index.
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: 9877
          protocol: TCP
      livenessProbe:
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: /etc/scribe-exporter/config
          readOnly: true
        {{- if include "scribe-exporter.hasKeys" . }}
        # A directory mount, never subPath: the kubelet swaps the files when the Secret
        # changes, and the exporter re-reads a key file when it changes.
        - name: keys
          mountPath: /etc/scribe-exporter/keys
          readOnly: true
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "scribe-exporter.fullname" . }}
    {{- if include "scribe-exporter.hasKeys" . }}
    - name: keys
      secret:
        secretName: {{ include "scribe-exporter.secretName" . }}
        defaultMode: 0440
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
