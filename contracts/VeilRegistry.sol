// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title VeilRegistry
/// @notice Versioned registry of anonymized, encrypted face data sets. Each version anchors one
/// Merkle root over the data set's records; per-image data lives in the public manifest (IPFS)
/// and in the Merkle leaves, so the gas per image falls as data sets grow.
/// @dev Storage per version is two slots (root; registrant | recordCount | blockNumber). The
/// manifest CID, model hash, method, params and epsilon are carried by the `VersionAdded`
/// event, which `getVersion`'s `blockNumber` locates in one block. Merkle proofs use sorted
/// pairs: parent = keccak256(min(a, b) ++ max(a, b)); an odd node is promoted unchanged.
contract VeilRegistry {
    // ------------------------------------------------------------------ errors
    /// @dev Each refusal names the account refused; the role it lacks is the error's name.
    error NotAdmin(address account);
    error NotPendingAdmin(address account, address pendingAdmin);
    error NotInstitution(address account);
    error NotAuditor(address account);
    error NotKeyService(address account);
    error NotDatasetOwner(uint256 datasetId, address account, address owner);
    /// @dev The data set's owner no longer holds the institution role: its writes are frozen.
    error OwnerNotInstitution(uint256 datasetId, address owner);
    error UnknownDataset(uint256 datasetId);
    error UnknownVersion(uint256 datasetId, uint256 version);
    error ExpiryInPast(uint64 expiresAt, uint256 nowTs);
    error ZeroAddress();
    error EmptyDataset();
    error ZeroMerkleRoot();
    error RecordCountTooLarge(uint64 recordCount);
    error AlreadyInRole(address account, string role);
    error NotInRole(address account, string role);
    error NoGrant(uint256 datasetId, address grantee);
    error StaleAuditAnchor(uint64 entryCount, uint64 previousEntryCount);

    // ------------------------------------------------------------------ events
    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);
    event AdminProposed(address indexed admin, address indexed pendingAdmin);
    event InstitutionAdded(address indexed account);
    event InstitutionRemoved(address indexed account);
    event AuditorAdded(address indexed account);
    event AuditorRemoved(address indexed account);
    event KeyServiceChanged(address indexed previousKeyService, address indexed newKeyService);
    event DatasetRegistered(uint256 indexed datasetId, address indexed owner);
    event VersionAdded(
        uint256 indexed datasetId,
        uint256 indexed version,
        address indexed registrant,
        bytes32 merkleRoot,
        uint64 recordCount,
        string manifestCid,
        bytes32 modelHash,
        string method,
        string params,
        uint32 epsilonMilli
    );
    event AccessGranted(uint256 indexed datasetId, address indexed grantee, uint64 expiresAt);
    event AccessRevoked(uint256 indexed datasetId, address indexed grantee);
    event Attested(
        uint256 indexed datasetId,
        uint256 indexed version,
        address indexed auditor,
        bool passed,
        string reportCid
    );
    event AuditAnchored(uint256 indexed index, bytes32 root, uint64 entryCount);

    // ------------------------------------------------------------------ storage
    /// @dev Two slots. `registrant` of version 1 is the data set's owner.
    struct Version {
        bytes32 merkleRoot;
        address registrant;
        uint48 recordCount;
        uint48 blockNumber;
    }

    struct Grant {
        uint64 expiresAt;
        uint64 grantedAt;
        bool revoked;
    }

    struct AuditAnchor {
        bytes32 root;
        uint64 entryCount;
        uint64 anchoredAt;
        uint64 blockNumber;
    }

    /// @notice The account that appoints and removes roles and hands over the contract.
    address public admin;
    /// @notice The admin proposed by `proposeAdmin`, until it accepts; address(0) if none.
    address public pendingAdmin;
    /// @notice The key service's account (anchors the audit log); address(0) if none.
    address public keyService;
    /// @dev Starts at 1 so that registering a data set updates a non-zero slot (cheaper).
    uint256 private _nextDatasetId = 1;
    /// @notice Whether an account holds the institution role.
    mapping(address => bool) public isInstitution;
    /// @notice Whether an account holds the auditor role.
    mapping(address => bool) public isAuditor;
    mapping(uint256 => mapping(uint256 => Version)) private _versions;
    /// @dev Versions beyond the first; written only by addVersion, so registration stays cheap.
    mapping(uint256 => uint256) private _extraVersions;
    mapping(uint256 => mapping(address => Grant)) private _grants;
    /// @dev datasetId => version => auditor => 0 none, 1 passed, 2 failed.
    mapping(uint256 => mapping(uint256 => mapping(address => uint8))) private _verdicts;
    AuditAnchor private _latestAnchor;
    /// @notice How many audit anchors were recorded.
    uint256 public auditAnchorCount;

    constructor() {
        admin = msg.sender;
        emit AdminChanged(address(0), msg.sender);
    }

    // ------------------------------------------------------------------ modifiers
    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlyInstitution() {
        if (!isInstitution[msg.sender]) revert NotInstitution(msg.sender);
        _;
    }

    modifier onlyAuditor() {
        if (!isAuditor[msg.sender]) revert NotAuditor(msg.sender);
        _;
    }

    modifier onlyKeyService() {
        if (msg.sender != keyService) revert NotKeyService(msg.sender);
        _;
    }

    /// @dev Writes that widen access or add content: only the owner, and only while it is
    /// still an institution (an admin freezes a data set by removing its owner's role).
    modifier onlyActiveDatasetOwner(uint256 datasetId) {
        address owner = _owner(datasetId);
        if (owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender, owner);
        if (!isInstitution[owner]) revert OwnerNotInstitution(datasetId, owner);
        _;
    }

    /// @dev Revoking narrows access, so a frozen owner may still do it.
    modifier onlyDatasetOwner(uint256 datasetId) {
        address owner = _owner(datasetId);
        if (owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender, owner);
        _;
    }

    // ------------------------------------------------------------------ roles
    /// @notice Step 1 of handing over the contract: name the next admin. Nothing changes
    /// until that account calls `acceptAdmin`, so a mistyped address loses nothing; a new
    /// proposal replaces the previous one, and address(0) cancels it.
    /// @param newAdmin The account that may accept the admin role.
    function proposeAdmin(address newAdmin) external onlyAdmin {
        pendingAdmin = newAdmin;
        emit AdminProposed(admin, newAdmin);
    }

    /// @notice Step 2: the proposed account takes the admin role.
    function acceptAdmin() external {
        address pending = pendingAdmin;
        if (msg.sender != pending || pending == address(0)) {
            revert NotPendingAdmin(msg.sender, pending);
        }
        emit AdminChanged(admin, pending);
        admin = pending;
        pendingAdmin = address(0);
    }

    /// @notice Appoint an institution: it may register data sets and write to its own.
    /// @param account The institution's account.
    function addInstitution(address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        if (isInstitution[account]) revert AlreadyInRole(account, "institution");
        isInstitution[account] = true;
        emit InstitutionAdded(account);
    }

    /// @notice Remove an institution. It can no longer register data sets, and its data sets
    /// are frozen: no new version, no new grant (reads, verification and live grants go on;
    /// it may still revoke). Adding the role back unfreezes them.
    /// @param account The institution's account.
    function removeInstitution(address account) external onlyAdmin {
        if (!isInstitution[account]) revert NotInRole(account, "institution");
        isInstitution[account] = false;
        emit InstitutionRemoved(account);
    }

    /// @notice Appoint an auditor: it may attest verification verdicts.
    /// @param account The auditor's account.
    function addAuditor(address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        if (isAuditor[account]) revert AlreadyInRole(account, "auditor");
        isAuditor[account] = true;
        emit AuditorAdded(account);
    }

    /// @notice Remove an auditor; its past attestations stay in the events.
    /// @param account The auditor's account.
    function removeAuditor(address account) external onlyAdmin {
        if (!isAuditor[account]) revert NotInRole(account, "auditor");
        isAuditor[account] = false;
        emit AuditorRemoved(account);
    }

    /// @notice Appoint the key service (it anchors the audit log); address(0) removes it.
    /// @param account The key service's account.
    function setKeyService(address account) external onlyAdmin {
        emit KeyServiceChanged(keyService, account);
        keyService = account;
    }

    // ------------------------------------------------------------------ data sets
    /// @notice Register a new data set with its first version (institutions only).
    /// @param merkleRoot Root over the version's record leaves (sorted-pair keccak tree).
    /// @param recordCount Number of records (images), 1 to 2^48 - 1.
    /// @param manifestCid IPFS CID of the public manifest (in the event only).
    /// @param modelHash Hash of the anonymization model (in the event only).
    /// @param method Anonymization method name (in the event only).
    /// @param params Method parameters, canonical JSON (in the event only).
    /// @param epsilonMilli Privacy budget in thousandths, 0 if none (in the event only).
    /// @return datasetId The new data set's id (from 1).
    function registerDataset(
        bytes32 merkleRoot,
        uint64 recordCount,
        string calldata manifestCid,
        bytes32 modelHash,
        string calldata method,
        string calldata params,
        uint32 epsilonMilli
    ) external onlyInstitution returns (uint256 datasetId) {
        datasetId = _nextDatasetId++;
        emit DatasetRegistered(datasetId, msg.sender);
        _store(datasetId, 1, merkleRoot, recordCount);
        emit VersionAdded(
            datasetId,
            1,
            msg.sender,
            merkleRoot,
            recordCount,
            manifestCid,
            modelHash,
            method,
            params,
            epsilonMilli
        );
    }

    /// @notice Append a version (re-encryption, additions); earlier versions stay untouched.
    /// Only the owner, while it holds the institution role.
    /// @param datasetId The data set.
    /// @param merkleRoot Root over the new version's record leaves.
    /// @param recordCount Number of records, 1 to 2^48 - 1.
    /// @param manifestCid IPFS CID of the version's manifest (in the event only).
    /// @param modelHash Hash of the anonymization model (in the event only).
    /// @param method Anonymization method name (in the event only).
    /// @param params Method parameters, canonical JSON (in the event only).
    /// @param epsilonMilli Privacy budget in thousandths, 0 if none (in the event only).
    /// @return version The new version's number (from 2).
    function addVersion(
        uint256 datasetId,
        bytes32 merkleRoot,
        uint64 recordCount,
        string calldata manifestCid,
        bytes32 modelHash,
        string calldata method,
        string calldata params,
        uint32 epsilonMilli
    ) external onlyActiveDatasetOwner(datasetId) returns (uint256 version) {
        uint256 extra = _extraVersions[datasetId] + 1;
        _extraVersions[datasetId] = extra;
        version = extra + 1;
        _store(datasetId, version, merkleRoot, recordCount);
        emit VersionAdded(
            datasetId,
            version,
            msg.sender,
            merkleRoot,
            recordCount,
            manifestCid,
            modelHash,
            method,
            params,
            epsilonMilli
        );
    }

    /// @notice How many data sets exist (ids run from 1 to this).
    /// @return The number of data sets.
    function datasetCount() external view returns (uint256) {
        return _nextDatasetId - 1;
    }

    /// @notice A data set's owner and number of versions; reverts UnknownDataset.
    /// @param datasetId The data set.
    /// @return owner The registering institution.
    /// @return versionCount Versions so far (from 1).
    function getDataset(uint256 datasetId)
        external
        view
        returns (address owner, uint256 versionCount)
    {
        owner = _owner(datasetId);
        versionCount = _extraVersions[datasetId] + 1;
    }

    /// @notice Stored fields of one version; the rest is in the VersionAdded event of
    /// `blockNumber` (topics: datasetId, version).
    /// @param datasetId The data set.
    /// @param version The version (from 1).
    /// @return merkleRoot Root over the version's records.
    /// @return recordCount Number of records.
    /// @return registrant Who added the version.
    /// @return blockNumber The block of its VersionAdded event.
    function getVersion(uint256 datasetId, uint256 version)
        external
        view
        returns (bytes32 merkleRoot, uint64 recordCount, address registrant, uint64 blockNumber)
    {
        Version storage v = _version(datasetId, version);
        return (v.merkleRoot, v.recordCount, v.registrant, v.blockNumber);
    }

    /// @notice True when `proof` links `leaf` (already hashed) to the version's Merkle root.
    /// Works for every data set, frozen or not.
    /// @param datasetId The data set.
    /// @param version The version.
    /// @param leaf The record's leaf hash.
    /// @param proof Sibling hashes from the leaf up.
    /// @return Whether the proof reaches the stored root.
    function verifyRecord(uint256 datasetId, uint256 version, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node < sibling ? _hashPair(node, sibling) : _hashPair(sibling, node);
        }
        return node == _version(datasetId, version).merkleRoot;
    }

    // ------------------------------------------------------------------ access grants
    /// @notice Let `grantee` obtain the data set's keys until `expiresAt` (replaces an earlier
    /// grant). Only the owner, while it holds the institution role.
    /// @param datasetId The data set.
    /// @param grantee The account granted access.
    /// @param expiresAt Unix time the grant ends; must be in the future.
    function grantAccess(uint256 datasetId, address grantee, uint64 expiresAt)
        external
        onlyActiveDatasetOwner(datasetId)
    {
        if (grantee == address(0)) revert ZeroAddress();
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, block.timestamp);
        _grants[datasetId][grantee] =
            Grant({expiresAt: expiresAt, grantedAt: uint64(block.timestamp), revoked: false});
        emit AccessGranted(datasetId, grantee, expiresAt);
    }

    /// @notice End a grant now (the owner, even a frozen one).
    /// @param datasetId The data set.
    /// @param grantee The account whose grant ends.
    function revokeAccess(uint256 datasetId, address grantee) external onlyDatasetOwner(datasetId) {
        Grant storage g = _grants[datasetId][grantee];
        if (g.expiresAt == 0 || g.revoked) revert NoGrant(datasetId, grantee);
        g.revoked = true;
        emit AccessRevoked(datasetId, grantee);
    }

    /// @notice Whether `account` holds a live grant: not revoked, and `block.timestamp` before
    /// its expiry (callers should also check expiry against their own clock).
    /// @param datasetId The data set.
    /// @param account The account asking.
    /// @return True while the grant is live.
    function hasAccess(uint256 datasetId, address account) external view returns (bool) {
        Grant storage g = _grants[datasetId][account];
        return !g.revoked && block.timestamp < g.expiresAt;
    }

    /// @notice The stored grant of `grantee` (all zero if none); reverts UnknownDataset.
    /// @param datasetId The data set.
    /// @param grantee The grantee.
    /// @return expiresAt Unix time the grant ends.
    /// @return grantedAt Unix time of the latest grant.
    /// @return revoked Whether it was revoked.
    function getGrant(uint256 datasetId, address grantee)
        external
        view
        returns (uint64 expiresAt, uint64 grantedAt, bool revoked)
    {
        _owner(datasetId);
        Grant storage g = _grants[datasetId][grantee];
        return (g.expiresAt, g.grantedAt, g.revoked);
    }

    // ------------------------------------------------------------------ audits
    /// @notice Record an auditor's verdict on a version (the report is on IPFS).
    /// @param datasetId The data set.
    /// @param version The version verified.
    /// @param passed The verdict.
    /// @param reportCid IPFS CID of the verification report (in the event only).
    function attest(uint256 datasetId, uint256 version, bool passed, string calldata reportCid)
        external
        onlyAuditor
    {
        _version(datasetId, version);
        _verdicts[datasetId][version][msg.sender] = passed ? 1 : 2;
        emit Attested(datasetId, version, msg.sender, passed, reportCid);
    }

    /// @notice 0: no attestation by `auditor`, 1: passed, 2: failed (the latest verdict).
    /// @param datasetId The data set.
    /// @param version The version.
    /// @param auditor The auditor.
    /// @return The verdict code.
    function getAttestation(uint256 datasetId, uint256 version, address auditor)
        external
        view
        returns (uint8)
    {
        return _verdicts[datasetId][version][auditor];
    }

    /// @notice The key service anchors the root of its append-only audit log.
    /// @param root Root over the log's entries.
    /// @param entryCount Entries covered; never less than the previous anchor's.
    function anchorAudit(bytes32 root, uint64 entryCount) external onlyKeyService {
        uint64 previous = _latestAnchor.entryCount;
        if (entryCount < previous) revert StaleAuditAnchor(entryCount, previous);
        _latestAnchor = AuditAnchor({
            root: root,
            entryCount: entryCount,
            anchoredAt: uint64(block.timestamp),
            blockNumber: uint64(block.number)
        });
        uint256 index = auditAnchorCount++;
        emit AuditAnchored(index, root, entryCount);
    }

    /// @notice The latest audit anchor (all zero if none).
    /// @return root Root over the log's entries.
    /// @return entryCount Entries covered.
    /// @return anchoredAt Unix time of the anchor.
    /// @return blockNumber Block of the anchor.
    function latestAuditAnchor()
        external
        view
        returns (bytes32 root, uint64 entryCount, uint64 anchoredAt, uint64 blockNumber)
    {
        AuditAnchor storage a = _latestAnchor;
        return (a.root, a.entryCount, a.anchoredAt, a.blockNumber);
    }

    // ------------------------------------------------------------------ internals
    function _store(uint256 datasetId, uint256 version, bytes32 merkleRoot, uint64 recordCount)
        private
    {
        if (merkleRoot == bytes32(0)) revert ZeroMerkleRoot();
        if (recordCount == 0) revert EmptyDataset();
        if (recordCount > type(uint48).max) revert RecordCountTooLarge(recordCount);
        _versions[datasetId][version] = Version({
            merkleRoot: merkleRoot,
            registrant: msg.sender,
            recordCount: uint48(recordCount),
            blockNumber: uint48(block.number)
        });
    }

    function _owner(uint256 datasetId) private view returns (address owner) {
        owner = _versions[datasetId][1].registrant;
        if (owner == address(0)) revert UnknownDataset(datasetId);
    }

    function _version(uint256 datasetId, uint256 version) private view returns (Version storage v) {
        _owner(datasetId);
        v = _versions[datasetId][version];
        if (v.registrant == address(0)) revert UnknownVersion(datasetId, version);
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }
}
