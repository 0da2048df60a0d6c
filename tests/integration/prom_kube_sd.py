"""prom_kube_sd.py: the targets Prometheus 2.42's kubernetes_sd builds from API objects.

A port, for the tests, of discovery/kubernetes/{pod,endpoints,endpointslice}.go at
v2.42.0 (buildPod, buildEndpoints, buildEndpointSlice with the discovery.k8s.io/v1
adaptor, podLabels, serviceLabels): given the objects of fake_kube_api.FakeKubeAPI it
returns, per role and namespace, the discovered targets with their
`__meta_kubernetes_*` labels. It is independent of scrapeship's C code, so a test can
hand these targets to a real Prometheus (through http_sd_configs) where Prometheus'
own kubernetes_sd is not available: Debian's prometheus 2.42.0+ds is built without
it ("field kubernetes_sd_configs not found in type config.ScrapeConfig").

Left out as the tests do not use them: attach_metadata (node labels), the
discovery.k8s.io/v1beta1 adaptor, and role node/service/ingress. Only the standard
library is used.
"""
import re

META = "__meta_kubernetes_"


def _sanitize(name):
    """strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes '_'."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _labels(prefix, d):
    out = {}
    for k, v in (d or {}).items():
        ln = _sanitize(k)
        out[META + prefix + "_" + ln] = v
        out[META + prefix + "present_" + ln] = "true"
    return out


def _meta_maps(prefix, md):
    out = {}
    for k, v in (md.get("labels") or {}).items():
        out[META + prefix + "_label_" + _sanitize(k)] = v
        out[META + prefix + "_labelpresent_" + _sanitize(k)] = "true"
    for k, v in (md.get("annotations") or {}).items():
        out[META + prefix + "_annotation_" + _sanitize(k)] = v
        out[META + prefix + "_annotationpresent_" + _sanitize(k)] = "true"
    return out


def _hostport(ip, port):
    return "[%s]:%s" % (ip, port) if ":" in ip else "%s:%s" % (ip, port)


def pod_labels(p):
    """podLabels()."""
    md, st, spec = p["metadata"], p.get("status") or {}, p.get("spec") or {}
    ready = "unknown"
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready":
            ready = str(c.get("status", "")).lower()
            break
    ls = {META + "pod_name": md["name"], META + "pod_ip": st.get("podIP", ""), META + "pod_ready": ready,
          META + "pod_phase": st.get("phase", ""), META + "pod_node_name": spec.get("nodeName", ""),
          META + "pod_host_ip": st.get("hostIP", ""), META + "pod_uid": md.get("uid", "")}
    for ref in md.get("ownerReferences") or []:
        if ref.get("controller"):
            if ref.get("kind"):
                ls[META + "pod_controller_kind"] = ref["kind"]
            if ref.get("name"):
                ls[META + "pod_controller_name"] = ref["name"]
            break
    for k, v in (md.get("labels") or {}).items():
        ls[META + "pod_label_" + _sanitize(k)] = v
        ls[META + "pod_labelpresent_" + _sanitize(k)] = "true"
    for k, v in (md.get("annotations") or {}).items():
        ls[META + "pod_annotation_" + _sanitize(k)] = v
        ls[META + "pod_annotationpresent_" + _sanitize(k)] = "true"
    return ls


def service_labels(s):
    md = s["metadata"]
    ls = {META + "service_name": md["name"], META + "namespace": md["namespace"]}
    ls.update(_meta_maps("service", md))
    return ls


def pod_targets(p):
    """buildPod(): one target per container port (or per port-less container)."""
    st = p.get("status") or {}
    if not st.get("podIP"):
        return []
    group = pod_labels(p)
    group[META + "namespace"] = p["metadata"]["namespace"]
    spec = p.get("spec") or {}
    conts = [(c, False) for c in spec.get("containers") or []] + \
            [(c, True) for c in spec.get("initContainers") or []]
    out = []
    for c, init in conts:
        statuses = st.get("initContainerStatuses" if init else "containerStatuses") or []
        cid = next((s.get("containerID", "") for s in statuses if s.get("name") == c["name"]), "")
        base = {META + "pod_container_name": c["name"], META + "pod_container_id": cid,
                META + "pod_container_image": c.get("image", ""),
                META + "pod_container_init": "true" if init else "false"}
        if not c.get("ports"):
            out.append(dict(group, __address__=st["podIP"], **base))
            continue
        for port in c["ports"]:
            n = str(port["containerPort"])
            t = dict(group, __address__=_hostport(st["podIP"], n), **base)
            t.update({META + "pod_container_port_number": n, META + "pod_container_port_name": port.get("name", ""),
                      META + "pod_container_port_protocol": port.get("protocol", "TCP")})
            out.append(t)
    return out


def _pod_ref(pods, ref):
    if not ref or ref.get("kind") != "Pod":
        return None
    return pods.get((ref.get("namespace", ""), ref.get("name", "")))


def _unseen_ports(seen, group):
    """Container ports of the seen pods that no endpoint port covered."""
    out = []
    for p, ports in seen.values():
        for c in (p.get("spec") or {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if cp["containerPort"] in ports:
                    continue
                n = str(cp["containerPort"])
                t = dict(group, __address__=_hostport(p["status"].get("podIP", ""), n))
                t.update({META + "pod_container_name": c["name"], META + "pod_container_image": c.get("image", ""),
                          META + "pod_container_port_name": cp.get("name", ""),
                          META + "pod_container_port_number": n,
                          META + "pod_container_port_protocol": cp.get("protocol", "TCP")})
                t.update(pod_labels(p))
                out.append(t)
    return out


def endpoints_targets(eps, services, pods):
    """buildEndpoints(). services, pods: {(ns, name): object}."""
    md = eps["metadata"]
    group = {META + "namespace": md["namespace"], META + "endpoints_name": md["name"]}
    svc = services.get((md["namespace"], md["name"]))
    if svc:
        group.update(service_labels(svc))
    group.update(_labels("endpoints_label", md.get("labels")))
    seen, out = {}, []

    def add(addr, port, ready):
        t = dict(group, __address__=_hostport(addr["ip"], port["port"]))
        t.update({META + "endpoint_port_name": port.get("name", ""),
                  META + "endpoint_port_protocol": port.get("protocol", ""), META + "endpoint_ready": ready})
        ref = addr.get("targetRef")
        if ref:
            t[META + "endpoint_address_target_kind"] = ref.get("kind", "")
            t[META + "endpoint_address_target_name"] = ref.get("name", "")
        if addr.get("nodeName") is not None:
            t[META + "endpoint_node_name"] = addr["nodeName"]
        if addr.get("hostname"):
            t[META + "endpoint_hostname"] = addr["hostname"]
        p = _pod_ref(pods, ref)
        if p is None:
            out.append(t)
            return
        seen.setdefault((p["metadata"]["namespace"], p["metadata"]["name"]), (p, set()))[1].add(port["port"])
        t.update(pod_labels(p))
        for c in p["spec"].get("containers") or []:
            hit = next((cp for cp in c.get("ports") or [] if cp["containerPort"] == port["port"]), None)
            if hit:
                t.update({META + "pod_container_name": c["name"], META + "pod_container_image": c.get("image", ""),
                          META + "pod_container_port_name": hit.get("name", ""),
                          META + "pod_container_port_number": str(port["port"]),
                          # endpoints.go takes the endpoint port's protocol here
                          META + "pod_container_port_protocol": port.get("protocol", "")})
        out.append(t)

    for ss in eps.get("subsets") or []:
        for port in ss.get("ports") or []:
            for a in ss.get("addresses") or []:
                add(a, port, "true")
            for a in ss.get("notReadyAddresses") or []:
                add(a, port, "false")
    return out + _unseen_ports(seen, group)


def endpointslice_targets(es, services, pods):
    """buildEndpointSlice() with the discovery.k8s.io/v1 adaptor."""
    md = es["metadata"]
    group = {META + "namespace": md["namespace"], META + "endpointslice_name": md["name"],
             META + "endpointslice_address_type": es.get("addressType", "")}
    svc_name = (md.get("labels") or {}).get("kubernetes.io/service-name")
    svc = services.get((md["namespace"], svc_name)) if svc_name is not None else None
    if svc:
        group.update(service_labels(svc))
    seen, out = {}, []
    for ep in es.get("endpoints") or []:
        for port in es.get("ports") or []:
            for addr in ep.get("addresses") or []:
                t = dict(group, __address__=_hostport(addr, port["port"]) if port.get("port") is not None else addr)
                for key, lab in (("name", "port_name"), ("protocol", "port_protocol"),
                                 ("appProtocol", "port_app_protocol")):
                    if port.get(key) is not None:
                        t[META + "endpointslice_" + lab] = port[key]
                if port.get("port") is not None:
                    t[META + "endpointslice_port"] = str(port["port"])
                cond = ep.get("conditions") or {}
                for key in ("ready", "serving", "terminating"):
                    if cond.get(key) is not None:
                        t[META + "endpointslice_endpoint_conditions_" + key] = "true" if cond[key] else "false"
                if ep.get("hostname") is not None:
                    t[META + "endpointslice_endpoint_hostname"] = ep["hostname"]
                ref = ep.get("targetRef")
                if ref:
                    t[META + "endpointslice_address_target_kind"] = ref.get("kind", "")
                    t[META + "endpointslice_address_target_name"] = ref.get("name", "")
                for k, v in (ep.get("deprecatedTopology") or {}).items():
                    t[META + "endpointslice_endpoint_topology_" + _sanitize(k)] = v
                    t[META + "endpointslice_endpoint_topology_present_" + _sanitize(k)] = "true"
                p = _pod_ref(pods, ref)
                if p is None:
                    out.append(t)
                    continue
                ports = seen.setdefault((p["metadata"]["namespace"], p["metadata"]["name"]), (p, set()))[1]
                if port.get("port") is not None:
                    ports.add(port["port"])
                t.update(pod_labels(p))
                for c in p["spec"].get("containers") or []:
                    hit = next((cp for cp in c.get("ports") or []
                                if port.get("port") is not None and cp["containerPort"] == port["port"]), None)
                    if hit:
                        t.update({META + "pod_container_name": c["name"],
                                  META + "pod_container_image": c.get("image", ""),
                                  META + "pod_container_port_name": hit.get("name", ""),
                                  META + "pod_container_port_number": str(port["port"]),
                                  META + "pod_container_port_protocol": hit.get("protocol", "TCP")})
                out.append(t)
    return out + _unseen_ports(seen, group)


def targets(objects, role, namespaces=None):
    """objects: FakeKubeAPI.objects ({kind: {(ns, name): obj}}). -> list of label dicts."""
    def keep(key):
        return not namespaces or key[0] in namespaces
    pods = objects.get("pods", {})
    services = objects.get("services", {})
    out = []
    if role == "pod":
        for key, p in sorted(pods.items()):
            if keep(key):
                out += pod_targets(p)
    elif role == "endpoints":
        for key, e in sorted(objects.get("endpoints", {}).items()):
            if keep(key):
                out += endpoints_targets(e, services, pods)
    elif role == "endpointslice":
        for key, e in sorted(objects.get("endpointslices", {}).items()):
            if keep(key):
                out += endpointslice_targets(e, services, pods)
    else:
        raise ValueError("role %s not ported" % role)
    return out
