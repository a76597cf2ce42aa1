# PyAirtable's access rules: the one place where roles, what they imply and what they allow are
# written down. Every subgraph asks the permissions subgraph, which asks this policy (oso).
#
# A Person carries its role bindings in the tenants a check is about, as [resource id, role]
# pairs; resources carry their ids (a workspace its organization), and an organization whether it
# is deleted.

actor Person {}

# ---------------------------------------------------------------------------------------------
# Organizations (tenants). Roles, lowest first: guest < member < admin < owner.
resource Organization {
    roles = ["guest", "member", "admin", "owner"];
    permissions = [
        "read",                 # see the organization (name, slug)
        "leave",                # leave it (the last owner is refused by the service)
        "read_members",         # list members and their roles
        "read_invitations",     # list invitations (who can invite sees who is invited)
        "create_workspace",
        "update",               # rename
        "delete",               # delete (soft, with a grace period); see `restore` below
        "manage_members",       # change roles, remove members, resend and revoke invitations
        "transfer_ownership",
        # Webhooks: members see endpoints and their delivery logs (not secrets or custom headers,
        # which may hold credentials); owners and admins create, change, rotate, test and replay.
        "read_webhooks", "manage_webhooks",
        # Invite or grant a role: only at or below one's own.
        "invite_guest", "invite_member", "invite_admin", "invite_owner",
        "grant_guest", "grant_member", "grant_admin", "grant_owner"
    ];

    "guest" if "member";
    "member" if "admin";
    "admin" if "owner";

    "read" if "guest";
    "leave" if "guest";

    "read_members" if "member";
    "read_invitations" if "member";
    "create_workspace" if "member";
    "invite_guest" if "member";
    "invite_member" if "member";
    "read_webhooks" if "member";

    "update" if "admin";
    "manage_members" if "admin";
    "invite_admin" if "admin";
    "grant_guest" if "admin";
    "grant_member" if "admin";
    "grant_admin" if "admin";
    "manage_webhooks" if "admin";

    "delete" if "owner";
    "transfer_ownership" if "owner";
    "invite_owner" if "owner";
    "grant_owner" if "owner";
}

# ---------------------------------------------------------------------------------------------
# Workspaces. Roles, lowest first: viewer < commenter < editor < creator < owner. An owner or
# admin of the organization is owner of every workspace in it; the effective role is the higher
# of that and a direct binding.
resource Workspace {
    roles = ["viewer", "commenter", "editor", "creator", "owner"];
    permissions = [
        "read",                 # see the workspace
        "read_collaborators",
        "comment",
        "edit",                 # edit records
        "create_bases",
        "update",               # rename
        "archive",              # archive and restore
        "delete",
        "manage_collaborators", # change and remove collaborators
        "read_files",           # list files, download them
        "upload_files",         # upload files (and complete one's uploads)
        "delete_own_files",     # delete files one uploaded
        "delete_files",         # delete anyone's files
        "manage_files",         # set the content types the workspace accepts
        "grant_viewer", "grant_commenter", "grant_editor", "grant_creator", "grant_owner"
    ];
    relations = { organization: Organization };

    "viewer" if "commenter";
    "commenter" if "editor";
    "editor" if "creator";
    "creator" if "owner";
    "owner" if "admin" on "organization";

    "read" if "viewer";
    "read_collaborators" if "viewer";
    "read_files" if "viewer";
    "comment" if "commenter";
    "edit" if "editor";
    "upload_files" if "editor";
    "delete_own_files" if "editor";
    "create_bases" if "creator";
    "update" if "creator";
    "delete_files" if "creator";
    "grant_viewer" if "creator";
    "grant_commenter" if "creator";
    "grant_editor" if "creator";
    "grant_creator" if "creator";
    "archive" if "owner";
    "delete" if "owner";
    "manage_collaborators" if "owner";
    "manage_files" if "owner";
    "grant_owner" if "owner";
}

has_relation(organization: Organization, "organization", workspace: Workspace) if
    organization = workspace.organization;

has_role(person: Person, role: String, organization: Organization) if
    [organization.id, role] in person.roles;

has_role(person: Person, role: String, workspace: Workspace) if
    [workspace.id, role] in person.roles;

# ---------------------------------------------------------------------------------------------
# Profiles: one sees one's own, and those of people one shares an organization with.
resource Profile {
    permissions = ["read"];
}

has_permission(person: Person, "read", profile: Profile) if
    person.id = profile.id;

has_permission(person: Person, "read", profile: Profile) if
    tenant in person.tenants and tenant in profile.tenants;

# ---------------------------------------------------------------------------------------------
# What is allowed. A deleted organization (restorable for its grace period) is gone for everyone,
# with its workspaces; only its owners may restore it.
allow(person: Person, action: String, organization: Organization) if
    not organization.deleted and has_permission(person, action, organization);

allow(person: Person, "restore", organization: Organization) if
    organization.deleted and has_role(person, "owner", organization);

allow(person: Person, action: String, workspace: Workspace) if
    not workspace.organization.deleted and has_permission(person, action, workspace);

allow(person: Person, action: String, profile: Profile) if
    has_permission(person, action, profile);
