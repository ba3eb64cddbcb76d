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
    error NotAdmin();
    error NotInstitution();
    error NotAuditor();
    error NotKeyService();
    error NotDatasetOwner();
    error UnknownDataset(uint256 datasetId);
    error UnknownVersion(uint256 datasetId, uint256 version);
    error ExpiryInPast(uint64 expiresAt, uint256 nowTs);
    error ZeroAddress();
    error EmptyDataset();
    error ZeroMerkleRoot();
    error RecordCountTooLarge(uint64 recordCount);
    error AlreadyInRole(address account);
    error NotInRole(address account);
    error NoGrant(uint256 datasetId, address grantee);
    error StaleAuditAnchor(uint64 entryCount, uint64 previousEntryCount);

    // ------------------------------------------------------------------ events
    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);
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

    address public admin;
    address public keyService;
    /// @dev Starts at 1 so that registering a data set updates a non-zero slot (cheaper).
    uint256 private _nextDatasetId = 1;
    mapping(address => bool) public isInstitution;
    mapping(address => bool) public isAuditor;
    mapping(uint256 => mapping(uint256 => Version)) private _versions;
    /// @dev Versions beyond the first; written only by addVersion, so registration stays cheap.
    mapping(uint256 => uint256) private _extraVersions;
    mapping(uint256 => mapping(address => Grant)) private _grants;
    /// @dev datasetId => version => auditor => 0 none, 1 passed, 2 failed.
    mapping(uint256 => mapping(uint256 => mapping(address => uint8))) private _verdicts;
    AuditAnchor private _latestAnchor;
    uint256 public auditAnchorCount;

    constructor() {
        admin = msg.sender;
        emit AdminChanged(address(0), msg.sender);
    }

    // ------------------------------------------------------------------ modifiers
    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyInstitution() {
        if (!isInstitution[msg.sender]) revert NotInstitution();
        _;
    }

    modifier onlyAuditor() {
        if (!isAuditor[msg.sender]) revert NotAuditor();
        _;
    }

    modifier onlyKeyService() {
        if (msg.sender != keyService) revert NotKeyService();
        _;
    }

    modifier onlyDatasetOwner(uint256 datasetId) {
        if (_owner(datasetId) != msg.sender) revert NotDatasetOwner();
        _;
    }

    // ------------------------------------------------------------------ roles
    function setAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit AdminChanged(admin, newAdmin);
        admin = newAdmin;
    }

    function addInstitution(address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        if (isInstitution[account]) revert AlreadyInRole(account);
        isInstitution[account] = true;
        emit InstitutionAdded(account);
    }

    function removeInstitution(address account) external onlyAdmin {
        if (!isInstitution[account]) revert NotInRole(account);
        isInstitution[account] = false;
        emit InstitutionRemoved(account);
    }

    function addAuditor(address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        if (isAuditor[account]) revert AlreadyInRole(account);
        isAuditor[account] = true;
        emit AuditorAdded(account);
    }

    function removeAuditor(address account) external onlyAdmin {
        if (!isAuditor[account]) revert NotInRole(account);
        isAuditor[account] = false;
        emit AuditorRemoved(account);
    }

    /// @notice Appoint the key service; address(0) removes it.
    function setKeyService(address account) external onlyAdmin {
        emit KeyServiceChanged(keyService, account);
        keyService = account;
    }

    // ------------------------------------------------------------------ data sets
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
    function addVersion(
        uint256 datasetId,
        bytes32 merkleRoot,
        uint64 recordCount,
        string calldata manifestCid,
        bytes32 modelHash,
        string calldata method,
        string calldata params,
        uint32 epsilonMilli
    ) external onlyDatasetOwner(datasetId) returns (uint256 version) {
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

    function datasetCount() external view returns (uint256) {
        return _nextDatasetId - 1;
    }

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
    function getVersion(uint256 datasetId, uint256 version)
        external
        view
        returns (bytes32 merkleRoot, uint64 recordCount, address registrant, uint64 blockNumber)
    {
        Version storage v = _version(datasetId, version);
        return (v.merkleRoot, v.recordCount, v.registrant, v.blockNumber);
    }

    /// @notice True when `proof` links `leaf` (already hashed) to the version's Merkle root.
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
    function grantAccess(uint256 datasetId, address grantee, uint64 expiresAt)
        external
        onlyDatasetOwner(datasetId)
    {
        if (grantee == address(0)) revert ZeroAddress();
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, block.timestamp);
        _grants[datasetId][grantee] =
            Grant({expiresAt: expiresAt, grantedAt: uint64(block.timestamp), revoked: false});
        emit AccessGranted(datasetId, grantee, expiresAt);
    }

    function revokeAccess(uint256 datasetId, address grantee) external onlyDatasetOwner(datasetId) {
        Grant storage g = _grants[datasetId][grantee];
        if (g.expiresAt == 0 || g.revoked) revert NoGrant(datasetId, grantee);
        g.revoked = true;
        emit AccessRevoked(datasetId, grantee);
    }

    function hasAccess(uint256 datasetId, address account) external view returns (bool) {
        Grant storage g = _grants[datasetId][account];
        return !g.revoked && block.timestamp < g.expiresAt;
    }

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
    function attest(uint256 datasetId, uint256 version, bool passed, string calldata reportCid)
        external
        onlyAuditor
    {
        _version(datasetId, version);
        _verdicts[datasetId][version][msg.sender] = passed ? 1 : 2;
        emit Attested(datasetId, version, msg.sender, passed, reportCid);
    }

    /// @notice 0: no attestation by `auditor`, 1: passed, 2: failed (the latest verdict).
    function getAttestation(uint256 datasetId, uint256 version, address auditor)
        external
        view
        returns (uint8)
    {
        return _verdicts[datasetId][version][auditor];
    }

    /// @notice The key service anchors the root of its append-only audit log.
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
